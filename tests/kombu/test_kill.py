"""Celery on orizuru:// against SIGKILL, on real worker processes; and the same
scenarios on kombu's own Redis transport, which loses or repeats the task.

Ours runs with ``heartbeat_timeout`` 2 s; kombu's Redis transport with its defaults,
but for the visibility timeout scaled down from an hour to 2 s where a task outlives
it. Bounds are wide (a busy 2-core machine); the facts asserted are counts: who ran a
task, how many times.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from orizuru_py import Queue
from tests.kombu.celery_app import make_app
from tests.kombu.workers import Cluster, orizuru_url, wait_for

pytestmark = pytest.mark.slow

HEARTBEAT = 2.0
OURS = {"heartbeat_timeout": HEARTBEAT, "gc_interval": 1.0}
SLACK = 12.0  # seconds beyond the heartbeat a busy machine may need to start a task again


@pytest.fixture
def cluster(tmp_path: Path, redis_url: str, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    broker, options = request.param
    c = Cluster(orizuru_url(redis_url) if broker == "orizuru" else redis_url, options, tmp_path)
    try:
        yield c
    finally:
        c.stop()


def send(c: Cluster, task: str, *args: Any, countdown: float | None = None) -> None:
    app = make_app(c.broker, c.options, c.queue)
    app.send_task(task, args=args, queue=c.queue, countdown=countdown)
    app.close()


def kill_main_during_task(c: Cluster, pool: str) -> tuple[float, list[list[str]]]:
    """w1 runs a 3 s task and is SIGKILLed in its main process; w2 waits. Returns the
    seconds from the kill until w2 started it (or the window, if it never did) and
    the notes. w1's run waits at a gate until the kill: a CI run once took longer to
    start w2 than w1 took to finish the task, and w2 then had nothing to run."""
    gate = c.tmp / f"{c.queue}.gate"
    gate.touch()
    w1 = c.start("w1", pool)
    c.wait_ready(w1)
    send(c, "long", 3.0, str(c.notes), str(gate))
    wait_for(lambda: c.lines("start"), 30, "w1 to start the task")
    w2 = c.start("w2", pool)
    c.wait_ready(w2)
    os.kill(w1.pid, signal.SIGKILL)
    killed = time.monotonic()
    gate.unlink()  # the run w2 begins is not held
    window = HEARTBEAT + SLACK
    try:
        wait_for(lambda: any(r[1].startswith("w2@") for r in c.lines("start")), window, "w2")
    except AssertionError:
        return window, c.lines()
    return time.monotonic() - killed, c.lines()


@pytest.mark.parametrize("cluster", [("orizuru", OURS)], indirect=True)
@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_killed_worker_s_task_runs_on_another_within_the_heartbeat(
    cluster: Cluster, pool: str
) -> None:
    seconds, _ = kill_main_during_task(cluster, pool)
    wait_for(lambda: any(r[1].startswith("w2@") for r in cluster.lines("done")), 30, "w2 done")
    print(f"\nFIGURE orizuru main SIGKILL ({pool}): w2 started the task {seconds:.1f} s later")
    assert seconds < HEARTBEAT + SLACK


@pytest.mark.parametrize("cluster", [("redis", {})], indirect=True)
def test_kombu_redis_loses_a_killed_worker_s_task_for_the_visibility_timeout(
    cluster: Cluster,
) -> None:
    seconds, lines = kill_main_during_task(cluster, "prefork")
    print(f"\nFIGURE kombu redis main SIGKILL: no other worker ran it in {seconds:.0f} s")
    assert not [r for r in lines if r[1].startswith("w2@")]


@pytest.mark.parametrize("cluster", [("orizuru", OURS)], indirect=True)
def test_a_killed_pool_child_s_task_runs_again(cluster: Cluster) -> None:
    w1, w2 = cluster.start("w1", "prefork"), cluster.start("w2", "prefork")
    cluster.wait_ready(w1, w2)
    send(cluster, "long", 3.0, str(cluster.notes))
    wait_for(lambda: cluster.lines("start"), 30, "a worker to start the task")
    os.kill(int(cluster.lines("start")[0][2]), signal.SIGKILL)
    killed = time.monotonic()
    seconds = wait_for(lambda: len(cluster.lines("start")) == 2, HEARTBEAT + SLACK, "a rerun")
    wait_for(lambda: cluster.lines("done"), 30, "the rerun to finish")
    print(f"\nFIGURE orizuru pool child SIGKILL: run again {seconds:.1f} s later")
    assert time.monotonic() - killed < HEARTBEAT + SLACK + 30


@pytest.mark.parametrize("cluster", [("orizuru", {**OURS, "max_attempts": 2})], indirect=True)
def test_a_task_that_kills_its_worker_ends_in_the_dead_list(
    cluster: Cluster, redis_url: str
) -> None:
    w1 = cluster.start("w1", "prefork")
    cluster.wait_ready(w1)
    send(cluster, "poison", str(cluster.notes))
    r = redis.Redis.from_url(redis_url)
    wait_for(lambda: Queue(r, cluster.queue).stats().dead == 1, 60, "the dead letter")
    time.sleep(HEARTBEAT)  # nothing runs it a third time
    assert len(cluster.lines("start")) == 2
    r.close()


def run_long_task(c: Cluster, seconds: float, pool: str = "prefork") -> list[list[str]]:
    w1 = c.start("w1", pool)
    c.wait_ready(w1)
    send(c, "long", seconds, str(c.notes))
    wait_for(lambda: c.lines("start"), 30, "w1 to start the task")
    c.wait_ready(c.start("w2", "prefork"))
    wait_for(lambda: c.lines("done"), seconds + 30, "the task to finish")
    time.sleep(1.0)
    return c.lines("start")


LONG = 4 * HEARTBEAT  # a task (or a countdown) this long outlives 4 heartbeat timeouts


@pytest.mark.parametrize("cluster", [("orizuru", OURS)], indirect=True)
@pytest.mark.parametrize("pool", ["prefork", "solo"])  # solo: the task blocks the event loop
def test_a_task_longer_than_any_timeout_runs_once_while_its_worker_lives(
    cluster: Cluster, pool: str
) -> None:
    starts = run_long_task(cluster, LONG, pool)
    print(f"\nFIGURE orizuru {LONG:.0f} s task ({pool}): ran {len(starts)} time(s)")
    assert len(starts) == 1


KOMBU_SHORT_VISIBILITY = {"visibility_timeout": 2, "unacked_restore_interval": 1,
                          "unacked_restore_throttle": 1}  # fmt: skip


@pytest.mark.parametrize("cluster", [("redis", KOMBU_SHORT_VISIBILITY)], indirect=True)
def test_kombu_redis_runs_a_task_longer_than_the_visibility_timeout_twice(
    cluster: Cluster,
) -> None:
    starts = run_long_task(cluster, LONG)  # 4 visibility timeouts
    print(f"\nFIGURE kombu redis {LONG:.0f} s task, visibility 2 s: ran {len(starts)} time(s)")
    assert len(starts) >= 2


def run_countdown_task(c: Cluster, held: Any) -> list[list[str]]:
    """w1 takes a task due in ``LONG`` seconds and holds it until then (Celery keeps ETA
    tasks unacked in memory); w2 starts meanwhile. Returns the starts."""
    c.wait_ready(c.start("w1", "prefork"))
    send(c, "long", 0.5, str(c.notes), countdown=LONG)
    wait_for(held, 30, "w1 to take the task")
    c.wait_ready(c.start("w2", "prefork"))
    wait_for(lambda: c.lines("done"), 60, "the task to run")
    time.sleep(1.5)
    return c.lines("start")


@pytest.mark.parametrize("cluster", [("orizuru", OURS)], indirect=True)
def test_a_countdown_longer_than_any_timeout_runs_once(cluster: Cluster, redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    starts = run_countdown_task(cluster, lambda: Queue(r, cluster.queue).stats().in_flight == 1)
    print(f"\nFIGURE orizuru countdown {LONG:.0f} s: ran {len(starts)} time(s)")
    assert len(starts) == 1
    r.close()


@pytest.mark.parametrize("cluster", [("redis", KOMBU_SHORT_VISIBILITY)], indirect=True)
def test_kombu_redis_runs_a_countdown_longer_than_the_visibility_timeout_twice(
    cluster: Cluster, redis_url: str
) -> None:
    r = redis.Redis.from_url(redis_url)
    mine = cluster.queue.encode()  # the unacked hash is shared by every queue of the db
    starts = run_countdown_task(cluster, lambda: any(mine in v for v in r.hvals("unacked")))
    print(f"\nFIGURE kombu redis countdown {LONG:.0f} s, visibility 2 s: ran {len(starts)} time(s)")
    assert len(starts) >= 2
    r.close()
