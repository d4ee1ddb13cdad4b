"""Worker: handlers, retries with backoff, dead-lettering, back-pressure, stopping."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import redis

from orizuru_py import Consumer, GarbageCollector, Producer, Queue, RateLimit
from orizuru_py.backoff import Exponential, Linear
from orizuru_py.deadletter import DeadLetter
from orizuru_py.keys import QueueKeys
from orizuru_py.worker import Worker
from tests.support import keys_of, running, wait_for


def sample_hand(r: redis.Redis, worker: Worker, samples: int) -> list[int]:
    """How many messages a running worker holds (taken or in a handler), every 20 ms."""
    consumer = worker.consumer
    sizes = []
    for _ in range(samples):
        sizes.append(r.llen(consumer.processing_key) + r.llen(consumer.prefetch_key))
        time.sleep(0.02)
    return sizes


def test_every_message_is_handled_once_and_nothing_is_left_behind(
    admin: redis.Redis, r: redis.Redis, queue: str
) -> None:
    Producer(r, queue).push_many({"n": i} for i in range(2000))
    seen: list[int] = []
    lock = threading.Lock()

    def handler(payload: dict[str, int]) -> None:
        with lock:
            seen.append(payload["n"])

    with running(Worker(r, queue, handler, concurrency=4)):
        wait_for(lambda: len(seen) >= 2000)
    assert sorted(seen) == list(range(2000))
    assert keys_of(admin, queue) == []


def test_a_failing_message_is_retried_with_the_configured_backoff(
    admin: redis.Redis, r: redis.Redis, queue: str
) -> None:
    Producer(r, queue).push({"n": 1})
    attempts: list[float] = []

    def handler(payload: Any) -> None:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise RuntimeError("not yet")

    backoff = Linear(step=0.4, jitter=0.0)  # waits 0.4 s, then 0.8 s
    with running(Worker(r, queue, handler, backoff=backoff, max_attempts=5)):
        wait_for(lambda: len(attempts) >= 3 and not r.exists(QueueKeys(queue).delayed))
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert len(attempts) == 3
    # Due after the backoff; promoted by a heartbeat tick (0.5 s) within a second of due.
    assert 0.4 <= gaps[0] < 0.4 + 1.0
    assert 0.8 <= gaps[1] < 0.8 + 1.0
    assert keys_of(admin, queue) == []


def test_max_attempts_dead_letters_with_the_exception_text(r: redis.Redis, queue: str) -> None:
    Producer(r, queue).push({"n": 1})
    calls: list[int] = []

    def handler(payload: Any) -> None:
        calls.append(1)
        raise ValueError("boom")

    worker = Worker(r, queue, handler, max_attempts=3, backoff=Exponential(base=0.05, jitter=0))
    with running(worker):
        wait_for(lambda: r.llen(QueueKeys(queue).dead) == 1)
    record = DeadLetter.decode(r.lindex(QueueKeys(queue).dead, 0))
    assert len(calls) == 3
    assert "ValueError: boom" in record.reason
    envelope = record.envelope()
    assert envelope is not None and envelope.deliveries == 2


def test_stop_mid_stream_hands_back_unstarted_and_finishes_in_flight(
    r: redis.Redis, queue: str
) -> None:
    Producer(r, queue).push_many({"n": i} for i in range(40))
    done: list[int] = []

    def slow(payload: dict[str, int]) -> None:
        time.sleep(0.2)
        done.append(payload["n"])

    worker = Worker(r, queue, slow, concurrency=2, prefetch=4)
    with running(worker):
        wait_for(lambda: len(done) >= 4)
    keys = QueueKeys(queue)
    assert worker.consumer is not None
    assert not r.exists(worker.consumer.processing_key)
    assert r.zcard(keys.consumers) == 0
    waiting = [m["n"] for m in _payloads(r, queue)]
    assert len(done) == len(set(done))
    assert sorted(done + waiting) == list(range(40))


@pytest.mark.parametrize(("limit", "held"), [(None, 2), (RateLimit(1000, per=1.0), 3)])
def test_held_messages_never_exceed_concurrency_plus_prefetch(
    r: redis.Redis, queue: str, limit: RateLimit | None, held: int
) -> None:
    """A slow handler's worker takes a message for each idle thread, started: it holds
    its threads' messages; with a rate limit each start passes the limiter, and it keeps
    ``prefetch`` more, unstarted."""
    Producer(r, queue).push_many({"n": i} for i in range(30))
    gate = threading.Event()
    worker = Worker(r, queue, lambda p: gate.wait(5), concurrency=2, prefetch=1, rate_limit=limit)
    with running(worker):
        sizes = sample_hand(r, worker, 20)
        gate.set()
    assert max(sizes) == held


def test_a_slow_handler_holds_no_message_beyond_its_threads(r: redis.Redis, queue: str) -> None:
    Producer(r, queue).push_many({"n": i} for i in range(40))
    worker = Worker(r, queue, lambda p: time.sleep(0.05), concurrency=2)  # prefetch up to 16
    sizes: list[int] = []
    aheads: list[int] = []
    with running(worker):
        for _ in range(25):  # sample_hand's samples, with what the worker keeps ahead
            aheads.append(worker.pace.ahead())
            sizes += sample_hand(r, worker, 1)
    # 2 threads (+ up to 2 handled, their acks in flight), not 2 + 16: a thread frees up
    # every 25 ms, LONG_RUN fetches of 0.5 ms, and none is kept ahead; with slower fetches
    # what 2 threads get through in four fetch times: one up to 6 ms a fetch, two up to 12.
    assert 2 <= max(sizes) <= 4 + max(aheads)
    assert max(aheads) <= 2


def test_a_handler_given_the_guard_can_push_to_another_queue(
    admin: redis.Redis, r: redis.Redis, queue: str
) -> None:
    Producer(r, queue).push({"n": 7})
    other = f"{queue}-retry"

    def handler(guard: Any) -> None:
        guard.push(other)

    with running(Worker(r, queue, handler, pass_guard=True)):
        wait_for(lambda: r.llen(QueueKeys(other).queue) == 1)
    assert [m["n"] for m in _payloads(r, other)] == [7]
    assert keys_of(admin, queue) == []
    r.delete(QueueKeys(other).queue)


def test_the_gc_inside_a_worker_recovers_a_dead_consumers_messages(
    r: redis.Redis, queue: str
) -> None:
    Producer(r, queue).push_many({"n": i} for i in range(5))
    dead = Consumer(r, queue, heartbeat_timeout=0.3)
    assert len(dead.next_batch(5, timeout=1)) == 5
    dead.stop_heartbeat()  # it dies holding all five
    seen: list[int] = []
    with running(Worker(r, queue, lambda p: seen.append(p["n"]), gc_interval=0.2)):
        wait_for(lambda: len(seen) == 5)
    assert sorted(seen) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"handler": 42}, TypeError),
        ({"concurrency": 0}, ValueError),
        ({"max_attempts": 0}, ValueError),
        ({"max_attempts": 65_536}, ValueError),  # past the count a message's 2 bytes hold
        ({"prefetch": -1}, ValueError),
        ({"gc_interval": 0}, ValueError),
        ({"concurrency": True}, ValueError),
        ({"heartbeat_timeout": 0.1}, ValueError),
    ],
)
def test_bad_arguments_fail_before_anything_is_taken(
    r: redis.Redis, queue: str, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    Producer(r, queue).push({"n": 1})
    args: dict[str, Any] = {"handler": print, **kwargs}
    with pytest.raises(error):
        Worker(r, queue, args.pop("handler"), **args)
    assert r.llen(QueueKeys(queue).queue) == 1


def _payloads(r: redis.Redis, queue: str) -> list[Any]:
    return [m.payload for m in Queue(r, queue).peek(1000)]


# -- a real `orizuru worker` process ----------------------------------------------------


def _worker_command(redis_url: str, handler: str, queue: str, *extra: str) -> list[str]:
    """``orizuru worker`` as a user types it, run by this test's interpreter."""
    return [
        sys.executable,
        "-m",
        "orizuru_py",
        "--redis-url",
        redis_url,
        "worker",
        handler,
        queue,
        *extra,
    ]


def _worker_process(
    redis_url: str, ledger_url: str, queue: str, *extra: str, sleep: float = 0.05
) -> subprocess.Popen[bytes]:
    """``orizuru worker`` on ``redis_url``; its handler records in ``ledger_url``."""
    env = {
        **os.environ,
        "HANDLED_URL": ledger_url,
        "HANDLED_KEY": f"{queue}:handled",
        "HANDLER_SLEEP": str(sleep),
    }
    cmd = _worker_command(redis_url, "tests.handlers:record", queue, *extra)
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_sigterm_to_a_worker_process_mid_batch_loses_nothing(
    admin: redis.Redis, admin_url: str, r: redis.Redis, redis_url: str, queue: str
) -> None:
    Producer(r, queue).push_many({"n": i} for i in range(300))
    proc = _worker_process(redis_url, admin_url, queue, "--concurrency", "4")
    try:
        wait_for(lambda: admin.scard(f"{queue}:handled") >= 20, timeout=20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        proc.kill()
    handled = {int(x) for x in admin.smembers(f"{queue}:handled")}
    waiting = {m["n"] for m in _payloads(r, queue)}
    assert handled | waiting == set(range(300))
    assert int(admin.get(f"{queue}:handled:calls") or 0) == len(handled)  # no duplicates
    assert not [k for k in keys_of(admin, queue) if b":processing:" in k]
    admin.delete(f"{queue}:handled", f"{queue}:handled:calls")


def test_a_second_sigint_stops_at_once_and_the_gc_recovers_in_flight(
    admin: redis.Redis, admin_url: str, r: redis.Redis, redis_url: str, queue: str
) -> None:
    Producer(r, queue).push_many({"n": i} for i in range(10))
    proc = _worker_process(
        redis_url,
        admin_url,
        queue,
        "--concurrency",
        "2",
        "--heartbeat-timeout",
        "1",
        "--gc-interval",
        "0",
        sleep=30,
    )
    keys = QueueKeys(queue)
    try:
        wait_for(
            lambda: admin.zcard(keys.consumers) == 1 and admin.llen(keys.queue) < 10, timeout=20
        )
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        proc.wait(10)  # far sooner than the 30 s handlers
    finally:
        proc.kill()
    (member,) = admin.zrange(keys.consumers, 0, -1)
    in_flight = admin.llen(keys.processing(member.decode()))
    assert in_flight >= 2
    time.sleep(1.2)  # past its deadline
    report = GarbageCollector(r, queue).collect()
    assert report.consumers_reaped == 1 and report.requeued == in_flight
    assert admin.llen(keys.queue) == 10
    admin.delete(f"{queue}:handled", f"{queue}:handled:calls")


def test_a_handler_path_that_does_not_import_is_a_clear_error(redis_url: str, queue: str) -> None:
    cmd = _worker_command(redis_url, "tests.no_such_module:f", queue)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "cannot import 'tests.no_such_module'" in out.stderr
