"""Scenario 6: a consumer frozen past its deadline, reaped, resumed, then killed."""

from __future__ import annotations

import pytest

from .accounting import Figures
from .scenarios import zombie

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def frozen(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Figures:
    return zombie(redis_url, tmp_path_factory.mktemp("zombie"), messages=40, work_ms=80)


def test_the_zombies_late_acks_return_false(frozen: Figures) -> None:
    assert frozen["late_acks"] == frozen["held_at_freeze"] > 0, frozen


def test_the_zombie_registers_again_when_it_resumes(frozen: Figures) -> None:
    assert frozen["registered_again"], frozen


def test_what_the_zombie_takes_after_resuming_is_recovered_when_it_dies(frozen: Figures) -> None:
    assert frozen["held_at_kill"] > 0 and frozen["recovered_after_kill"], frozen


def test_nothing_is_lost_or_stuck_around_a_zombie(frozen: Figures) -> None:
    assert (frozen["lost"], frozen["left"], frozen["crash_logs"]) == (0, {}, []), frozen
