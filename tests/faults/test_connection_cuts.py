"""Scenario 3: every connection goes through a proxy that cuts them at random."""

from __future__ import annotations

import pytest

from .accounting import Figures
from .scenarios import connection_cuts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cuts(redis_url: str, seed: int, tmp_path_factory: pytest.TempPathFactory) -> Figures:
    return connection_cuts(redis_url, tmp_path_factory.mktemp("cuts"), messages=1500, seed=seed)


def test_every_push_that_returned_an_id_is_delivered_despite_cuts(cuts: Figures) -> None:
    assert cuts["cuts"] > 0 and cuts["lost"] == 0, cuts


def test_consumers_survive_connection_cuts(cuts: Figures) -> None:
    assert cuts["crash_logs"] == [], cuts


def test_every_list_of_the_queue_is_empty_after_cuts(cuts: Figures) -> None:
    assert cuts["left"] == {}, cuts
