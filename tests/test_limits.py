"""Rate limits shared by every worker, and time limits that keep the worker whole, on
both APIs and across real processes. Counts are exact; timings have generous bounds."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
from rich.console import Console

import orizuru_py.asyncio as aio
from orizuru_py import Producer, Queue, RateLimit, RateLimited, Worker
from orizuru_py.ops import top, views
from tests.apis import Api
from tests.clirun import ROOT, environment, one_error_line, orizuru
from tests.support import keys_of, running, wait_for


def dead_letters(r: redis.Redis, queue: str) -> list[Any]:
    return Queue(r, queue).peek(100, where="dead")


class Log:
    """What handlers saw, from any thread: (monotonic time, payload n, attempts)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[float, int, int]] = []

    def add(self, guard: Any) -> None:
        with self.lock:
            self.seen.append((time.monotonic(), guard.payload["n"], guard.attempts))

    def of(self, wanted: set[int]) -> list[tuple[float, int, int]]:
        with self.lock:
            return [s for s in self.seen if s[1] in wanted]


# -- rate limits ----------------------------------------------------------------------------


def test_a_rate_limit_is_the_most_starts_in_any_window_and_counts_no_attempt(
    api: Api, admin: redis.Redis, r: redis.Redis, queue: str
) -> None:
    log = Log()
    Producer(r, queue).push_many([{"n": i} for i in range(40)])
    worker = api.Worker(
        r, queue, log.add, concurrency=4, rate_limit=RateLimit(10, per=0.5), pass_guard=True
    )
    with running(worker):
        wait_for(lambda: len(log.seen) >= 40, timeout=30)
    times = sorted(t for t, _, _ in log.seen)
    # 40 starts at most 10 in any 0.5 s: the first and the last are 1.5 s apart at least.
    assert times[-1] - times[0] >= 1.5 - 0.2
    assert sorted(n for _, n, _ in log.seen) == list(range(40))  # each once
    assert {a for _, _, a in log.seen} == {1}  # a throttled start counts no attempt
    assert Queue(r, queue).stats().delayed == 0
    assert not [k for k in keys_of(admin, queue) if b":rate" in k]  # the log expires


def test_a_throttled_key_holds_up_no_other_key(api: Api, r: redis.Redis, queue: str) -> None:
    log = Log()
    tenants = [{"n": i, "tenant": "a"} for i in range(12)]
    tenants += [{"n": 100 + i, "tenant": "b"} for i in range(3)]
    Producer(r, queue).push_many(tenants)
    limit = RateLimit(3, per=1.0, key=lambda payload: payload["tenant"])
    with running(api.Worker(r, queue, log.add, concurrency=4, rate_limit=limit, pass_guard=True)):
        wait_for(lambda: len(log.of({100, 101, 102})) == 3, timeout=30)
        a_by_then = len(log.of(set(range(12))))
        throttled = Queue(r, queue).stats().throttled
        wait_for(lambda: len(log.seen) >= 15, timeout=30)
    # b's three start in its first window, while a waits out three windows of its own.
    assert a_by_then <= 6
    assert "a" in throttled
    a_times = sorted(t for t, _, _ in log.of(set(range(12))))
    assert a_times[-1] - a_times[0] >= 3 * 1.0 - 0.3  # 12 at 3 a second: 4 windows
    assert sorted(n for _, n, _ in log.seen) == [*range(12), 100, 101, 102]
    assert {a for _, _, a in log.seen} == {1}


def limited_once(log: Log, raised: list[float]) -> Callable[[Any], None]:
    """A handler that logs every run, and on message 0's first raises RateLimited(1 s)
    (noting when in ``raised``)."""

    def handler(guard: Any) -> None:
        log.add(guard)
        if guard.payload["n"] == 0 and not raised:
            raised.append(time.monotonic())
            raise RateLimited(retry_after=1.0)

    return handler


@pytest.mark.parametrize("limited", [True, False], ids=["limit", "no-limit"])
def test_rate_limited_brings_the_message_back_uncounted_and_pauses_the_limiter(
    api: Api, r: redis.Redis, queue: str, limited: bool
) -> None:
    log, raised = Log(), list[float]()
    handler = limited_once(log, raised)

    producer = Producer(r, queue)
    producer.push({"n": 0})
    rate = RateLimit(1000) if limited else None
    with running(api.Worker(r, queue, handler, concurrency=2, rate_limit=rate, pass_guard=True)):
        wait_for(lambda: raised)
        producer.push({"n": 1})
        if limited:
            stats = wait_for(lambda: (s := Queue(r, queue).stats()).throttled and s)
        wait_for(lambda: len(log.seen) >= 3, timeout=20)
        handled_at = {n: t for t, n, _ in log.seen}
    assert [(n, a) for _, n, a in log.seen if n == 0] == [(0, 1), (0, 1)]  # uncounted
    assert handled_at[0] - raised[0] >= 0.9  # came back after retry_after
    # The queue's limiter (in Redis, for every worker; without a limit, this worker's
    # own pause) let nothing start meanwhile.
    assert handled_at[1] - raised[0] >= 0.9
    if limited:
        assert "" in stats.throttled


def test_a_rate_limited_run_holds_back_the_messages_already_in_hand(
    api: Api, r: redis.Redis, queue: str
) -> None:
    """Messages a take brought started, or that share the chunk of the message whose
    handler raised RateLimited, wait out the pause too: before, they ran at once (CI saw
    it: a message pushed just after the raise ran 8 ms later). One thread, so nothing
    runs beside the raising handler before its pause begins."""
    log, raised = Log(), list[float]()
    handler = limited_once(log, raised)

    Producer(r, queue).push_many([{"n": n} for n in range(6)])  # 0 is taken first
    with running(api.Worker(r, queue, handler, concurrency=1, pass_guard=True)):
        wait_for(lambda: len(log.seen) >= 7, timeout=20)
    assert raised and log.seen[0][1] == 0
    later = [(n, round(t - raised[0], 3)) for t, n, _ in log.seen[1:]]
    assert [(n, after) for n, after in later if after < 0.9] == []


def test_rate_limit_arguments_fail_at_the_call_site(r: redis.Redis, queue: str) -> None:
    with pytest.raises(ValueError, match="limit must be an int"):
        RateLimit(0)
    with pytest.raises(ValueError, match="per must"):
        RateLimit(5, per=0)
    with pytest.raises(TypeError, match="key must be a function"):
        RateLimit(5, key="tenant")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retry_after"):
        RateLimited(retry_after=-1)
    with pytest.raises(TypeError, match="must be a RateLimit"):
        Worker(r, queue, print, rate_limit=100)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="time_limit"):
        Worker(r, queue, print, time_limit=0)
    assert RateLimit.parse("20/10s") == RateLimit(20, per=10.0)
    assert RateLimit.parse("5/m") == RateLimit(5, per=60.0)
    with pytest.raises(ValueError, match="N/s"):
        RateLimit.parse("5 per second")


def test_a_bad_key_function_falls_back_to_the_queues_limiter(r: redis.Redis, queue: str) -> None:
    log = Log()
    Producer(r, queue).push_many([{"n": i} for i in range(4)])
    limit = RateLimit(2, per=0.5, key=lambda payload: payload["missing"])
    with running(Worker(r, queue, log.add, rate_limit=limit, pass_guard=True)):
        wait_for(lambda: len(log.seen) == 4, timeout=10)


def test_stats_and_the_stats_command_show_a_throttled_queue(r: redis.Redis, queue: str) -> None:
    Producer(r, queue).push_many([{"n": i, "t": "\x1b[31mred"} for i in range(6)])
    limit = RateLimit(1, per=30.0, key=lambda payload: payload["t"])
    with running(Worker(r, queue, lambda p: None, rate_limit=limit)):
        stats = wait_for(lambda: (s := Queue(r, queue).stats()).throttled and s)
    assert 20 < stats.throttled["\x1b[31mred"] <= 30
    assert stats.delayed == 5  # the throttled ones wait there, uncounted
    text = views.stats_text([stats])
    assert "throttled limiter" in text and "\\x1b[31mred" in text and "\x1b" not in text
    console = Console(width=100, height=24, record=True, color_system=None)
    console.print(top.frame([stats], "title", 24))
    assert f"{queue}[throttled]" in console.export_text()


# -- rate limits across processes -----------------------------------------------------------


def test_two_worker_processes_share_one_limit(
    r: redis.Redis, redis_url: str, queue: str, tmp_path: Path
) -> None:
    handled = f"{queue}:handled"
    Producer(r, queue).push_many([{"n": i} for i in range(30)])
    env = {**environment(), "HANDLED_URL": redis_url, "HANDLED_KEY": handled}
    cmd = [sys.executable, "-m", "orizuru_py", "worker", "tests.handlers:stamped", queue]
    cmd += ["--processes", "2", "--concurrency", "4", "--pass-guard", "--rate-limit", "10/s"]
    cmd += ["--redis-url", redis_url]
    with (tmp_path / "supervisor.log").open("w") as err:
        supervisor = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=err)
    try:
        wait_for(lambda: r.llen(f"{handled}:log") >= 30, timeout=60)
    finally:
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(30) == 0
    records = [line.decode().split(":") for line in r.lrange(f"{handled}:log", 0, -1)]
    assert sorted(int(n) for n, _, _, _ in records) == list(range(30))
    assert {a for _, a, _, _ in records} == {"1"}
    stamps = sorted(int(ms) for _, _, ms, _ in records)
    # 30 starts at 10 a second between two processes: 2 s apart at least (a limit per
    # process would take 1 s).
    assert stamps[-1] - stamps[0] >= 2000 - 300
    r.delete(f"{handled}:log")


# -- time limits ----------------------------------------------------------------------------


def test_a_handler_past_its_time_limit_fails_and_the_worker_keeps_its_concurrency(
    api: Api, admin: redis.Redis, r: redis.Redis, queue: str
) -> None:
    release = threading.Event()
    log = Log()

    def handler(guard: Any) -> None:
        log.add(guard)
        if guard.payload["n"] == 0:
            release.wait(60)  # stuck, in a call nothing can interrupt

    producer = Producer(r, queue)
    producer.push({"n": 0})
    worker = api.Worker(
        r, queue, handler, concurrency=2, time_limit=0.5, max_attempts=2, pass_guard=True
    )
    try:
        with running(worker):
            wait_for(lambda: log.of({0}))
            producer.push_many([{"n": i} for i in range(1, 21)])
            # Both deliveries of the stuck one pass the limit, yet the other 20 run.
            dead = wait_for(lambda: dead_letters(r, queue), timeout=30)
            wait_for(lambda: len(log.of(set(range(1, 21)))) == 20, timeout=30)
            if not api.is_async:
                assert len(worker.abandoned) == 2
                assert len(worker._workers) == 2 and all(t.is_alive() for t in worker._workers)
    finally:
        release.set()  # the late results come now: ignored
    assert [(n, a) for _, n, a in log.of({0})] == [(0, 1), (0, 2)]
    assert len(dead) == 1 and dead[0].payload == {"n": 0}
    assert "time limit 0.5 s" in dead[0].reason
    stuck = [t for t, n, _ in log.seen if n == 0]
    assert stuck[1] - stuck[0] >= 0.5  # retried once the limit passed
    time.sleep(0.3)
    assert len(dead_letters(r, queue)) == 1  # no ack after the limit
    assert Queue(r, queue).stats().waiting == 0


def test_an_async_handler_that_swallows_its_cancellation_still_fails(
    redis_url: str, r: redis.Redis, queue: str
) -> None:
    calls: list[int] = []

    async def handler(payload: Any) -> None:
        calls.append(payload["n"])
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return  # a late "success": not one

    async def main() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        await aio.Producer(client, queue).push({"n": 1})
        worker = aio.Worker(client, queue, handler, time_limit=0.2, max_attempts=1)
        task = asyncio.create_task(worker.run())
        for _ in range(200):
            if dead_letters(r, queue):
                break
            await asyncio.sleep(0.05)
        worker.stop()
        await task
        await client.aclose()

    asyncio.run(main())
    dead = dead_letters(r, queue)
    assert calls == [1] and len(dead) == 1 and "time limit 0.2 s" in dead[0].reason


def test_a_stuck_worker_process_is_replaced(
    r: redis.Redis, redis_url: str, queue: str, tmp_path: Path
) -> None:
    handled = f"{queue}:handled"
    producer = Producer(r, queue)
    producer.push({"n": 0, "stuck": True})
    producer.push_many([{"n": i} for i in range(1, 31)])
    env = {**environment(), "HANDLED_URL": redis_url, "HANDLED_KEY": handled}
    cmd = [sys.executable, "-m", "orizuru_py", "worker", "tests.handlers:stuck", queue]
    cmd += ["--processes", "2", "--concurrency", "2", "--time-limit", "1", "--max-attempts", "2"]
    cmd += ["--redis-url", redis_url]
    log_file = tmp_path / "supervisor.log"
    with log_file.open("w") as err:
        supervisor = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=err)
    try:
        dead = wait_for(lambda: dead_letters(r, queue), timeout=120)
        wait_for(lambda: r.scard(handled) == 30, timeout=120)
        wait_for(lambda: log_file.read_text().count("died (exit code 3)") == 2, timeout=120)
    finally:
        supervisor.send_signal(signal.SIGTERM)
        try:  # a child stopping with a handler in flight drains for up to 30 s
            code = supervisor.wait(90)
        except subprocess.TimeoutExpired:
            supervisor.kill()
            raise AssertionError(f"the supervisor did not stop:\n{log_file.read_text()}") from None
    text = log_file.read_text()
    assert text.count("a handler passed its time limit") == 2, text
    assert text.count("died (exit code 3)") == 2, text
    assert code == 0, text
    assert "time limit 1 s" in dead[0].reason and dead[0].payload["n"] == 0
    assert Queue(r, queue).stats().waiting == 0
    r.delete(handled, f"{handled}:calls")


def test_limit_options_fail_in_one_line(queue: str) -> None:
    for bad in (["--rate-limit", "5/x"], ["--rate-limit-key", "tests.handlers:record"],
                ["--time-limit", "0"]):  # fmt: skip
        done = orizuru("worker", "tests.handlers:record", queue, *bad)
        assert done.returncode == 2
        one_error_line(done)
