"""Failover through Sentinel with real processes: every push confirmed by a replica is
handled after its primary is SIGKILLed, and no worker dies of it (tests/failover.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orizuru_py import Producer
from tests.failover import ROOT, failover
from tests.servers import SentinelGroup


@pytest.mark.slow
def test_every_confirmed_push_is_handled_after_the_primary_is_killed(
    redis_url: str, tmp_path: Path
) -> None:
    figures = failover(redis_url, tmp_path, messages=600, replicas=1)
    print(figures)
    assert figures["lost"] == 0, figures
    assert figures["returned"] + figures["unconfirmed"] + figures["push_errors"] == 600
    assert figures["returned"] > 0
    assert figures["drained"] and figures["stranded"] == 0
    assert figures["workers_alive"] == 2 and figures["worker_exits"] == [0, 0]
    assert figures["duplicates"] >= 0


@pytest.mark.slow
def test_confirms_close_the_window_a_lagging_replica_opens(redis_url: str, tmp_path: Path) -> None:
    """The replica frozen for a second while 20 MB of batches land, then the primary
    killed: without confirms the writes the primary still held are gone; with them, every
    push that returned is handled (the others raised and are accounted for)."""
    flood = {"messages": 20_000, "lagging": 1.0, "batch": 100, "pad": 1000}
    confirmed = failover(redis_url, tmp_path, replicas=1, **flood)  # type: ignore[arg-type]
    print(confirmed)
    assert confirmed["lost"] == 0 and confirmed["returned"] > 0, confirmed
    assert confirmed["returned"] + confirmed["unconfirmed"] + confirmed["push_errors"] == 20_000
    unconfirmed = failover(redis_url, tmp_path, replicas=0, **flood)  # type: ignore[arg-type]
    print(unconfirmed)
    assert unconfirmed["lost"] > 0, unconfirmed
    for figures in (confirmed, unconfirmed):
        assert figures["stranded"] == 0 and figures["workers_alive"] == 2, figures


def test_the_command_line_finds_the_primary_through_sentinel(queue: str) -> None:
    with SentinelGroup() as group:
        Producer(group.master_for(), queue).push_many(range(3))
        sentinels = ",".join(f"{h}:{p}" for h, p in group.sentinel_addresses)
        cmd = [sys.executable, "-m", "orizuru_py", "stats", queue, "--json"]
        cmd += ["--sentinel", sentinels, "--master", group.master_name]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        (doc,) = json.loads(done.stdout)["queues"]
        assert (doc["queue"], doc["waiting"]) == (queue, 3)
