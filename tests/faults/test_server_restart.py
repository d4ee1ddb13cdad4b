"""Scenario 2: the server is SIGKILLed and restarted mid-stream (appendfsync always)."""

from __future__ import annotations

import pytest

from .accounting import Figures
from .scenarios import server_restart

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def restart(tmp_path_factory: pytest.TempPathFactory) -> Figures:
    return server_restart(tmp_path_factory.mktemp("restart"), messages=2000)


def test_every_push_that_returned_an_id_is_delivered(restart: Figures) -> None:
    assert restart["lost"] == 0 and restart["pushed"] > 0, restart


def test_a_push_raises_while_the_server_is_down(restart: Figures) -> None:
    assert restart["push_errors"] > 0, restart


def test_consumers_reconnect_by_themselves_and_carry_on(restart: Figures) -> None:
    assert restart["crash_logs"] == [], restart
    assert restart["handled"] > restart["handled_before_kill"] > 0, restart


def test_every_list_of_the_queue_is_empty_afterwards(restart: Figures) -> None:
    assert restart["left"] == {}, restart
