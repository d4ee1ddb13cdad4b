"""Poison messages: a message handed to application code counts a delivery whenever it
comes back, however it comes back, and goes to the dead-letter list at max_attempts;
what never reached application code comes back uncounted.

The worker runs in a real child process that the poison kills (``os._exit``), and a
supervisor loop (this test, as systemd's ``Restart=always`` would) starts it again at
once under the same name.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from orizuru_py import Consumer, DeadLetter, GarbageCollector, Producer, QueueKeys
from orizuru_py.chunks import settle_start
from tests.handlers import calls
from tests.support import wait_for

ROOT = Path(__file__).resolve().parent.parent


def _worker(url: str, ledger_url: str, queue: str, *args: str) -> subprocess.Popen[bytes]:
    """A worker child on ``url``; its handler logs its calls in ``ledger_url``."""
    env = {**os.environ, "HANDLED_URL": ledger_url, "HANDLED_KEY": queue}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.worker_child", url, queue, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(os.environ.get("WORKER_CHILD_LOG", os.devnull), "ab"),
    )


def _supervise(
    url: str, ledger_url: str, admin: redis.Redis, queue: str, *args: str, good: int
) -> int:
    """Run the worker, restarting it at once whenever it dies, until every good message
    is handled and the dead list holds the poison; returns how many times it died."""
    deaths = 0
    proc = _worker(url, ledger_url, queue, *args)
    try:

        def settled() -> bool:
            nonlocal proc, deaths
            if proc.poll() is not None:
                deaths += 1
                proc = _worker(url, ledger_url, queue, *args)
            handled = {n for n, _ in calls(admin, queue) if n >= 0}
            return len(handled) == good and admin.llen(QueueKeys(queue).dead) == 1

        wait_for(settled, timeout=60, interval=0.05)
    finally:
        proc.terminate()
        proc.wait(20)
    return deaths


@pytest.fixture
def log_cleanup(admin: redis.Redis, queue: str):  # type: ignore[no-untyped-def]
    yield
    admin.delete(f"{queue}:log")


def _dead_poison(r: redis.Redis, queue: str) -> DeadLetter:
    (record,) = r.lrange(QueueKeys(queue).dead, 0, -1)
    return DeadLetter.decode(record)


@pytest.mark.slow
@pytest.mark.usefixtures("log_cleanup")
def test_a_poison_that_kills_a_fixed_name_worker_is_dead_lettered_at_max_attempts(
    redis_url: str, admin_url: str, admin: redis.Redis, r: redis.Redis, queue: str
) -> None:
    producer = Producer(r, queue)
    producer.push({"n": -1, "poison": True})
    producer.push_many({"n": i} for i in range(20))
    args = ("--name", "w1", "--concurrency", "1", "--max-attempts", "3")
    deaths = _supervise(redis_url, admin_url, admin, queue, *args, good=20)
    poison_calls = [a for n, a in calls(admin, queue) if n == -1]
    assert poison_calls == [1, 2, 3]  # it ran three times, counted each time
    assert deaths == 3
    assert "max attempts reached (3 deliveries)" in _dead_poison(admin, queue).reason
    assert {n for n, _ in calls(admin, queue) if n >= 0} == set(range(20))


@pytest.mark.slow
@pytest.mark.usefixtures("log_cleanup")
def test_a_poisons_batchmates_are_never_dead_lettered_with_it(
    redis_url: str, admin_url: str, admin: redis.Redis, r: redis.Redis, queue: str
) -> None:
    good = 600
    producer = Producer(r, queue)
    producer.push_many({"n": i} for i in range(good // 2))
    producer.push({"n": -1, "poison": True})
    producer.push_many({"n": i} for i in range(good // 2, good))
    args = ("--concurrency", "1", "--max-attempts", "3")
    _supervise(redis_url, admin_url, admin, queue, *args, good=good)
    log = calls(admin, queue)
    assert [a for n, a in log if n == -1] == [1, 2, 3]
    # The poison's first chunk-mates were started with it and counted once when it
    # killed the process; then every message delivered before starts alone, so no
    # innocent message is counted twice, and none reaches the dead list.
    assert max(a for n, a in log if n >= 0) <= 2
    assert {n for n, _ in log if n >= 0} == set(range(good))
    assert DeadLetter.decode(admin.lindex(QueueKeys(queue).dead, 0)).envelope() is not None


def test_closing_a_consumer_counts_what_its_application_held(r: redis.Redis, queue: str) -> None:
    mid = Producer(r, queue).push("poison for a with-block")
    seen = []
    for _ in range(6):
        try:
            with Consumer(r, queue, max_attempts=3) as consumer:
                guard = consumer.next(timeout=1.0)
                if guard is not None:
                    seen.append(guard.attempts)
                    raise RuntimeError("the block fails before it settles the guard")
        except RuntimeError:
            continue
    assert seen == [1, 2, 3]
    record = DeadLetter.decode(r.lindex(QueueKeys(queue).dead, 0))
    assert record.envelope() is not None and record.envelope().id == mid  # type: ignore[union-attr]
    assert "max attempts reached (3 deliveries)" in record.reason


def test_what_a_worker_took_but_never_started_comes_back_uncounted(
    r: redis.Redis, queue: str
) -> None:
    ids = Producer(r, queue).push_many(["a", "b", "c"])
    consumer = Consumer(r, queue, heartbeat_timeout=0.3, prefetch=True)
    taken = consumer.next_batch(3, timeout=1.0)
    started = consumer._driver.run(settle_start(consumer.held, [], taken[:1]))
    assert [g.id for g in started] == ids[:1]
    consumer.stop_heartbeat()  # the worker dies: one message started, two only taken
    wait_for(lambda: GarbageCollector(r, queue).collect().consumers_reaped, timeout=5)
    with Consumer(r, queue) as after:
        again = after.next_batch(3, timeout=1.0)
        assert sorted((g.id, g.attempts) for g in again) == sorted(
            [(ids[0], 2), (ids[1], 1), (ids[2], 1)]
        )
        after.ack_many(again)


def test_a_message_retried_at_its_last_attempt_is_dead_lettered(r: redis.Redis, queue: str) -> None:
    """A script that retries whatever fails (``except: guard.retry(10)``) no longer loops on
    a poison: at the consumer's ``max_attempts``th delivery, retry dead-letters (found by
    the hunt, seed 302: it went on past max_attempts)."""
    Producer(r, queue).push({"n": 1})
    consumer = Consumer(r, queue, max_attempts=2)
    try:
        for attempt in (1, 2):
            guard = consumer.next(timeout=10.0)
            assert guard is not None and guard.attempts == attempt
            assert guard.retry(0.0)
        assert consumer.next(timeout=0.5) is None
        (record,) = r.lrange(QueueKeys(queue).dead, 0, -1)
        assert DeadLetter.decode(record).reason == "max attempts reached (2 deliveries)"
    finally:
        consumer.close()
    r.delete(QueueKeys(queue).dead)
