"""Scenario 7: twenty thousand messages through one consumer."""

from __future__ import annotations

import pytest

from .accounting import Figures
from .memory import memory

pytestmark = pytest.mark.slow

TRACED_BOUND = 1 << 20  # 1 MiB over 19k messages: a leak of 55 bytes a message shows
RSS_BOUND = 32 << 20  # generous: the allocator may keep what it once used


@pytest.fixture(scope="module")
def run(redis_url: str) -> Figures:
    return memory(redis_url, messages=20_000, warmup=1000)


def test_a_consumer_keeps_no_memory_per_message(run: Figures) -> None:
    assert run["traced_growth_bytes"] < TRACED_BOUND, run


def test_a_consumers_resident_memory_stays_flat(run: Figures) -> None:
    assert run["rss_growth_bytes"] < RSS_BOUND, run


def test_the_queue_keys_return_to_their_baseline(run: Figures) -> None:
    assert run["keys_after"] == run["keys_before"] and run["left"] == {}, run


def test_every_message_is_handled_once(run: Figures) -> None:
    assert (run["handled"], run["duplicates"]) == (run["messages"], 0), run
