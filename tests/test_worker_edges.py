"""The Worker at its edges: handlers that raise BaseException or are async, a thread of
ours that dies, head-of-line blocking, prompt acks, two workers of one name, and a
server that is not there yet when the worker starts."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import warnings
from typing import Any

import pytest
import redis

from orizuru_py import (
    DeadLetter,
    GarbageCollector,
    MessageGuard,
    Producer,
    QueueKeys,
    Worker,
    WorkerCrashed,
    handling,
)
from orizuru_py.envelope import message_id
from orizuru_py.handling import WorkerCore
from orizuru_py.ops.embedded import EmbeddedServer, _free_port
from tests.support import keys_of, running, wait_for


def test_a_handler_raising_system_exit_is_a_failed_attempt_and_the_worker_goes_on(
    r: redis.Redis, queue: str
) -> None:
    producer = Producer(r, queue)
    producer.push_many({"n": i} for i in range(90))
    producer.push_many([{"exit": True}, {"cancel": True}])
    producer.push_many({"n": i} for i in range(90, 180))
    good: set[int] = set()

    def handler(payload: dict[str, Any]) -> None:
        if "exit" in payload:
            raise SystemExit(3)  # a library calling sys.exit()
        if "cancel" in payload:
            raise asyncio.CancelledError  # a BaseException too
        good.add(payload["n"])

    worker = Worker(r, queue, handler, concurrency=2, max_attempts=2, backoff=lambda a: 0.05)
    with running(worker):
        wait_for(lambda: len(good) == 180 and r.llen(QueueKeys(queue).dead) == 2, timeout=20)
    reasons = sorted(DeadLetter.decode(x).reason for x in r.lrange(QueueKeys(queue).dead, 0, -1))
    assert reasons == ["CancelledError: ", "SystemExit: 3"]
    assert worker.stats.failed == 4 and worker.stats.dead_lettered == 2


def test_a_thread_of_ours_that_dies_stops_the_worker_loudly_and_the_gc_recovers(
    r: redis.Redis, queue: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    Producer(r, queue).push_many({"n": i} for i in range(10))
    gate = threading.Event()
    entered = threading.Semaphore(0)

    def handler(payload: Any) -> None:
        entered.release()
        gate.wait(30)

    worker = Worker(r, queue, handler, concurrency=2, heartbeat_timeout=0.5, gc_interval=None)
    original = WorkerCore._acked

    def broken_ack(self: WorkerCore, guards: Any) -> None:
        original(self, guards)
        if guards:  # a start alone comes back with no acks: only a real ack breaks it
            raise RuntimeError("a bug in the worker")  # kills the thread that sent the acks

    monkeypatch.setattr(WorkerCore, "_acked", broken_ack)
    thread_error: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:
            thread_error.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    # Both handlers run (how many more the worker took ahead depends on timing).
    assert entered.acquire(timeout=30) and entered.acquire(timeout=30)
    gate.set()
    thread.join(10)
    assert not thread.is_alive()
    assert len(thread_error) == 1 and isinstance(thread_error[0], WorkerCrashed)
    assert "a thread died" in caplog.text
    # Its heartbeat stopped with it: once the deadline passes, the GC has its messages.
    time.sleep(0.7)
    report = GarbageCollector(r, queue).collect()
    assert report.consumers_reaped == 1
    assert r.llen(QueueKeys(queue).queue) + worker.stats.handled == 10  # acked, or back


def test_handlers_that_outrun_the_acks_do_not_grow_the_processing_list_without_bound(
    r: redis.Redis, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fetch waits while too many acks wait for the control loop: what a death of
    the worker would run twice stays bounded, however slow the acks are."""
    monkeypatch.setattr(handling, "ACKS_BEHIND", 50)
    original = WorkerCore._acked

    def slow_acks(self: WorkerCore, guards: Any) -> None:
        time.sleep(0.02)  # a control loop that falls behind its handlers
        original(self, guards)

    monkeypatch.setattr(WorkerCore, "_acked", slow_acks)
    Producer(r, queue).push_many(range(3000))
    worker = Worker(r, queue, lambda p: None, concurrency=2, prefetch=10)
    deepest = 0
    with running(worker):
        while worker.stats.handled < 3000:
            deepest = max(deepest, r.llen(worker.consumer.processing_key))
            time.sleep(0.001)
    # 50 acks waiting, a commit in flight, a chunk per thread and the few kept ahead
    assert 0 < deepest <= 50 + 2 * (2 + 10) + 10


async def _async_handler(payload: Any) -> None:
    await asyncio.sleep(0)


class _AsyncCallable:
    async def __call__(self, payload: Any) -> None:
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    "handler",
    [_async_handler, _AsyncCallable(), functools.partial(_async_handler)],
    ids=["async def", "async __call__", "partial"],
)
def test_an_async_handler_is_refused_at_construction(
    r: redis.Redis, queue: str, handler: Any
) -> None:
    with pytest.raises(TypeError, match=r"orizuru_py\.asyncio\.Worker"):
        Worker(r, queue, handler)


def test_a_handler_returning_a_coroutine_is_a_failure_never_an_ack(
    r: redis.Redis, queue: str
) -> None:
    Producer(r, queue).push({"n": 1})
    worker = Worker(r, queue, lambda p: _async_handler(p), max_attempts=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would fail it
        with running(worker):
            wait_for(lambda: r.llen(QueueKeys(queue).dead) == 1)
    record = DeadLetter.decode(r.lindex(QueueKeys(queue).dead, 0))
    assert "returned an awaitable" in record.reason
    assert worker.stats.handled == 0


def test_a_free_thread_takes_the_next_message_not_one_behind_a_slow_one(
    r: redis.Redis, queue: str
) -> None:
    Producer(r, queue).push_many([{"s": 2.0}, {"s": 0.2}, {"s": 0.01}])
    started = time.monotonic()
    finished: dict[float, float] = {}

    def handler(payload: dict[str, float]) -> None:
        time.sleep(payload["s"])
        finished[payload["s"]] = time.monotonic() - started

    with running(Worker(r, queue, handler, concurrency=2)):
        wait_for(lambda: len(finished) == 3, timeout=10)
    # The 10 ms message starts on the thread that finished the 0.2 s one.
    assert finished[0.01] < 0.9, finished


def test_a_finished_message_leaves_the_processing_list_promptly(r: redis.Redis, queue: str) -> None:
    ids = Producer(r, queue).push_many({"n": i} for i in range(60))
    returned: dict[str, float] = {}
    left: dict[str, float] = {}

    def handler(guard: MessageGuard) -> None:
        time.sleep(0.05)
        returned[guard.id] = time.monotonic()

    worker = Worker(r, queue, handler, concurrency=4, pass_guard=True)
    stop = threading.Event()

    def watch() -> None:
        poller = redis.Redis(connection_pool=r.connection_pool)
        while not stop.is_set():
            now = time.monotonic()
            inside = {
                message_id(raw) for raw in poller.lrange(worker.consumer.processing_key, 0, -1)
            }
            for mid in list(returned):
                if mid not in inside and mid not in left:
                    left[mid] = now
            time.sleep(0.003)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with running(worker):
        wait_for(lambda: len(left) == len(ids), timeout=20)
    stop.set()
    watcher.join(5)
    lags = sorted(left[m] - returned[m] for m in ids)
    p90 = lags[int(len(lags) * 0.9)]
    assert p90 < 0.1, f"p90 from handler return to leaving the processing list: {p90:.3f} s"


def test_two_workers_of_one_name_never_hand_each_others_messages_back(
    admin: redis.Redis, r: redis.Redis, queue: str
) -> None:
    Producer(r, queue).push_many({"n": i} for i in range(2000))
    calls: list[int] = []
    lock = threading.Lock()

    def handler(payload: dict[str, int]) -> None:
        time.sleep(0.0005)
        with lock:
            calls.append(payload["n"])

    first = Worker(r, queue, handler, name="w1", concurrency=2)
    second = Worker(r, queue, handler, name="w1", concurrency=2)
    with running(first), running(second):
        wait_for(lambda: len(set(calls)) == 2000, timeout=60)
        assert first.consumer.id != second.consumer.id
    assert len(calls) == 2000  # no delivery was made twice
    assert keys_of(admin, queue) == []


def test_a_worker_started_while_the_server_is_down_waits_for_it(
    queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = _free_port()
    client = redis.Redis.from_url(f"redis://127.0.0.1:{port}/0")  # no silent retries
    handled: list[int] = []
    worker = Worker(client, queue, lambda p: handled.append(p["n"]), gc_interval=1.0)
    with caplog.at_level(logging.WARNING):
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        time.sleep(1.5)  # nothing listens yet: the worker retries, no traceback, no exit
        assert thread.is_alive()
        with EmbeddedServer(port=port) as server:
            Producer(redis.Redis.from_url(server.url), queue).push_many({"n": i} for i in range(10))
            wait_for(lambda: len(handled) == 10, timeout=20)
            worker.stop()
            thread.join(20)
            assert not thread.is_alive()
    assert f"127.0.0.1:{port}" in caplog.text
    assert "Traceback" not in caplog.text
