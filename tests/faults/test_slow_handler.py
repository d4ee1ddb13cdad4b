"""Scenario 5: a handler three times slower than the heartbeat timeout, a GC every 100 ms."""

from __future__ import annotations

import pytest

from .accounting import Figures
from .scenarios import slow_handler

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slow(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Figures:
    return slow_handler(redis_url, tmp_path_factory.mktemp("slow"), messages=4, consumers=2)


def test_a_live_consumer_with_a_slow_handler_is_never_reaped(slow: Figures) -> None:
    assert (slow["reaped"], slow["requeued"], slow["late_acks"]) == (0, 0, 0), slow


def test_a_slow_message_is_handled_exactly_once(slow: Figures) -> None:
    assert (slow["handled"], slow["duplicates"], slow["lost"]) == (slow["pushed"], 0, 0), slow
