"""Fault tests: the ``slow`` marker, and a fresh seed per run (printed, to replay one)."""

from __future__ import annotations

import os
import random

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: a fault scenario taking seconds (still run in CI; -m 'not slow' skips)"
    )


@pytest.fixture(scope="session")
def seed() -> int:
    """``FAULTS_SEED`` if set, else random; the scenarios that use it report it."""
    return int(os.environ.get("FAULTS_SEED") or random.randrange(2**32))
