"""Scenario 1: consumers SIGKILLed at random while they work lose nothing."""

from __future__ import annotations

import pytest

from .accounting import Figures
from .scenarios import sigkill_chaos

pytestmark = pytest.mark.slow

KILLS = 10


@pytest.fixture(scope="module", params=["consumer", "worker", "async-worker"])
def chaos(
    request: pytest.FixtureRequest,
    redis_url: str,
    seed: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Figures:
    # 2000 messages x 8 ms over 3 consumers take at least 5.3 s: longer than 10 kills at
    # most 500 ms apart, so every kill lands while messages are still being handled.
    return sigkill_chaos(
        redis_url,
        tmp_path_factory.mktemp("chaos"),
        messages=2000,
        kills=KILLS,
        work_ms=8,
        mode=request.param,
        seed=seed,
    )


def test_every_message_is_handled_although_consumers_are_sigkilled(chaos: Figures) -> None:
    assert (chaos["lost"], chaos["handled"]) == (0, chaos["pushed"]), chaos


def test_the_kills_land_while_messages_are_being_handled(chaos: Figures) -> None:
    assert chaos["kills"] == chaos["kills_mid_stream"] == KILLS, chaos


def test_every_list_of_the_queue_is_empty_afterwards(chaos: Figures) -> None:
    assert chaos["left"] == {}, chaos


def test_duplicates_are_bounded_by_what_the_reaped_consumers_held(chaos: Figures) -> None:
    assert chaos["duplicates"] <= chaos["reaped"] * chaos["max_held"], chaos


def test_no_consumer_crashes(chaos: Figures) -> None:
    assert chaos["crash_logs"] == [], chaos
