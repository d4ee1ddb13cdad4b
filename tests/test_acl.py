"""The README's ACL rule is enough for every part of orizuru_py, and nothing asks for more.

The rule is read from the README as written, given to a fresh user on the test server,
and every part runs as that user: producers, consumers, a worker, the GC, ``Queue``, the
asyncio API, the command line, the metrics collector and the dashboard's API. Redis logs
each refused command in ``ACL LOG``: the test asserts that nothing was refused.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

import orizuru_py
import orizuru_py.asyncio as aio
from orizuru_py import (
    Consumer,
    GarbageCollector,
    Producer,
    Queue,
    RateLimit,
    Schedule,
    Worker,
)
from orizuru_py.ops.dashboard.app import Settings, create_app
from orizuru_py.ops.metrics import QueueCollector
from tests.acl import ADDITIONS, README, SELECT, readme_rule, readme_user, refused
from tests.dashboard.served import Served
from tests.support import wait_for


@pytest.fixture
def restricted(r: redis.Redis) -> Iterator[str]:
    with readme_user(r) as url:
        yield url


def blocking_parts(rr: redis.Redis, queue: str) -> None:
    """Every blocking part and every settlement, a worker with a retry, the GC, ``Queue``."""
    other = f"{queue}-other"
    p = Producer(rr, queue)
    p.push({"a": 1})
    p.push_many(list(range(20)))
    p.push(1, delay=0.05)
    p.push(2, unique_key="u")
    p.push(3, ttl=30.0)
    c = Consumer(rr, queue)
    guard = c.next(timeout=1.0)
    assert guard is not None and guard.ack()
    guards = c.next_batch(10, timeout=1.0)
    assert len(guards) == 10
    guards[0].reject()
    guards[1].retry(delay=0.05)
    guards[2].dead_letter("acl test")
    guards[3].push(other)
    c.ack_many(guards[4:])
    held = c.next(timeout=1.0)
    assert held is not None
    c.close()  # hands ``held`` back, counted
    GarbageCollector(rr, queue).collect()

    failed: list[object] = []

    def handler(payload: object) -> None:
        if payload == 15 and not failed:
            failed.append(payload)
            raise RuntimeError("once")

    worker = Worker(rr, [queue, other], handler, gc_interval=0.1, concurrency=2)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_for(lambda: Queue(rr, queue).stats().waiting == 0 and failed)
    finally:
        worker.stop()
        thread.join(10)
    assert not thread.is_alive()

    limited_parts(rr, f"{queue}-limited")

    q = Queue(rr, queue)
    assert queue in Queue.all(rr)
    stats = q.stats()
    assert stats.dead == 1 and [s.queue for s in Queue.stats_of(rr, [queue, other])] == [
        queue,
        other,
    ]
    for where in ("waiting", "delayed", "unacked", "dead"):
        q.peek(5, where)
    q.pause()
    assert q.paused
    q.resume()
    assert q.cancel(p.push("to cancel"))
    assert q.delete(p.push("to delete"))
    dead_id = q.peek(1, "dead")[0].id
    assert q.requeue_one(dead_id)
    p.push(4, delay=60.0)
    assert q.purge(dead=True) >= 1
    list(QueueCollector(rr, [queue, other]).collect())


def limited_parts(rr: redis.Redis, queue: str) -> None:
    """A worker with a keyed rate limit and a time limit, and a periodic entry its beat
    pushes."""
    Producer(rr, queue).push_many(list(range(5)))
    seen: list[object] = []
    schedule = Schedule(rr)
    schedule.add(f"{queue}-tick", queue=queue, payload="tick", every=0.2)
    limit = RateLimit(100, per=1.0, key=lambda payload: str(payload))
    worker = Worker(rr, queue, seen.append, rate_limit=limit, time_limit=5.0, concurrency=2)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_for(lambda: len(seen) >= 5 and "tick" in seen)
    finally:
        worker.stop()
        thread.join(10)
        assert schedule.remove(f"{queue}-tick")
    assert not thread.is_alive()
    assert sorted(p for p in seen if p != "tick") == list(range(5))
    Queue(rr, queue).purge(dead=True)
    Queue(rr, queue).forget()


async def asyncio_parts(url: str, queue: str) -> None:
    """The asyncio API: a push, a batch taken and acked, a worker, the GC."""
    ar = redis.asyncio.Redis.from_url(url)
    try:
        await aio.Producer(ar, queue).push_many(list(range(10)))
        async with aio.Consumer(ar, queue) as consumer:
            await consumer.ack_many(await consumer.next_batch(5, timeout=1.0))

        async def handler(payload: object) -> None:
            pass

        worker = aio.Worker(ar, queue, handler, gc_interval=0.1)
        task = asyncio.create_task(worker.run())
        while await ar.llen(f"orizuru:{{{queue}}}:queue"):
            await asyncio.sleep(0.02)
        worker.stop()
        await task
        await aio.GarbageCollector(ar, queue).collect()
    finally:
        await ar.aclose()


def test_every_part_works_as_the_readmes_restricted_user(
    r: redis.Redis, restricted: str, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    rr = redis.Redis.from_url(restricted)
    with caplog.at_level(logging.WARNING, logger="orizuru_py"):
        blocking_parts(rr, queue)
        asyncio.run(asyncio_parts(restricted, queue))
    # The handler's one failure is the only thing logged: no refused command, no skipped check.
    logged = [rec.getMessage() for rec in caplog.records]
    assert len(logged) == 1 and "failed, retry in" in logged[0], logged

    cli = [sys.executable, "-m", "orizuru_py", "--redis-url", restricted]
    env = {**os.environ, "PYTHONPATH": str(README.parent)}
    for argv in (["stats", queue, "--json"], ["peek", queue, "--where", "dead"], ["gc", queue]):
        done = subprocess.run(cli + argv, capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr

    served = Served(create_app(rr, Settings()))
    try:
        assert served.call("/api/queues")[0] == 200
        assert served.call(f"/api/queues/{queue}")[0] == 200
        assert served.call(f"/api/messages/{queue}?where=dead")[0] == 200
        assert served.act(f"/api/actions/pause/{queue}") == (200, {"paused": True})
        assert served.act(f"/api/actions/resume/{queue}") == (200, {"paused": False})
    finally:
        served.close()

    assert refused(r, restricted) == []
    for name in (queue, f"{queue}-other"):
        Queue(r, name).purge(dead=True)
        Queue(r, name).forget()
    rr.close()


def test_every_command_a_script_calls_is_in_the_rule() -> None:
    """A script's command outside the rule fails only when that script runs as the user:
    the rate limiter's PTTL, PEXPIRE and ZREMRANGEBYSCORE went unseen until a worker with
    a limit ran here."""
    scripts = Path(orizuru_py.__file__).parent / "scripts"
    called = {
        name.lower()
        for path in scripts.glob("*.lua")
        for name in re.findall(r'redis\.p?call\("([A-Z]+)"', path.read_text(encoding="utf-8"))
    }
    allowed = {word[1:].split("|")[0] for word in readme_rule() if word.startswith("+")}
    assert len(called) > 20
    assert called - allowed == set()


def test_what_the_tests_add_to_the_rule_the_readme_says_to_add() -> None:
    """The commands the users of these tests get beyond the rule (on a newer server, on a
    database other than 0: a run on database 13 was refused SELECT) are named in the
    README beside it."""
    text = README.read_text(encoding="utf-8")
    for word in (*ADDITIONS, SELECT):
        assert f"``{word}``" in text, word


def test_a_command_outside_the_rule_is_refused_and_logged(
    r: redis.Redis, restricted: str, queue: str
) -> None:
    """The check above can fail: the user really is restricted, and a refusal is seen."""
    rr = redis.Redis.from_url(restricted)
    with pytest.raises(redis.exceptions.NoPermissionError):
        rr.execute_command("KEYS", "*")
    with pytest.raises(redis.exceptions.NoPermissionError):
        rr.lpush(f"elsewhere:{queue}", b"x")
    assert len(refused(r, restricted)) == 2
    rr.close()
