"""The markers kombu's own test classes carry."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "env(name): kombu's: the broker a test needs")
    config.addinivalue_line("markers", "flaky(reruns, reruns_delay): kombu's (not rerun here)")
