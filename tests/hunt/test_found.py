"""One regression test per defect the hunt found (see the report of issue 18). A test
marked xfail(strict=True) fails on the code as it is: fixing the defect makes it pass,
and strict makes that an error until the mark is removed."""

from __future__ import annotations

import asyncio
import sys

import pytest
import redis
import redis.asyncio

import orizuru_py.asyncio as aoz
from orizuru_py import Consumer, Producer, Queue


@pytest.mark.xfail(
    strict=True,
    reason="guard.retry() never dead-letters: retry.lua counts the delivery and puts the "
    "message back on the delayed set whatever max_attempts says, so a message retried at "
    "its last attempt is delivered again, past max_attempts (hunt seed 302 at 1eabbe0)",
)
def test_a_retry_at_the_last_attempt_dead_letters_the_message(r: redis.Redis, queue: str) -> None:
    Producer(r, queue).push({"n": 1})
    consumer = Consumer(r, queue, max_attempts=2, heartbeat_timeout=5.0)
    try:
        for attempt in (1, 2):
            guard = consumer.next(timeout=10.0)
            assert guard is not None and guard.attempts == attempt
            assert guard.retry(0.0)
        again = consumer.next(timeout=1.0)
        assert again is None, f"delivered again at attempt {again.attempts} of 2"
        assert Queue(r, queue).stats().dead == 1
    finally:
        consumer.close()


@pytest.mark.xfail(
    strict=True,
    reason="asyncio Consumer.close() swallows its own cancellation: stop_heartbeat() awaits "
    "the heartbeat task inside contextlib.suppress(CancelledError) "
    "(orizuru_py/asyncio/consumer.py:76), which also eats a cancel() of the task calling "
    "it; close() then runs to the end and returns normally",
)
def test_a_cancelled_close_raises_cancelled_error(redis_url: str, queue: str) -> None:
    async def scenario() -> str:
        r = redis.asyncio.Redis.from_url(redis_url)
        try:
            await aoz.Producer(r, queue).push({"n": 1})
            consumer = aoz.Consumer(r, queue, heartbeat_timeout=4.0)
            assert await consumer.next(timeout=10.0) is not None
            closing = asyncio.ensure_future(consumer.close())
            await asyncio.sleep(0)  # close() now awaits its heartbeat task (up to 0.5 s)
            closing.cancel()
            try:
                await closing
            except asyncio.CancelledError:
                return "cancelled"
            return f"returned normally, cancelling()={closing.cancelling()}"
        finally:
            await r.aclose()

    assert asyncio.run(scenario()) == "cancelled"


@pytest.mark.xfail(
    sys.version_info < (3, 12),
    strict=True,
    reason="on Python 3.11 a cancelled asyncio Consumer.next() may return normally, with or "
    "without a guard: CPython 3.11's asyncio.wait_for returns the result when the awaited "
    "future is done at the moment of the cancellation (asyncio/tasks.py:476-478), and "
    "redis-py 8.2 reads replies under it (redis/asyncio/connection.py:1532); orizuru_py's "
    "AsyncDriver passes that on. (Its own Pause uses wait_for too: asyncio/driver.py:56.)",
)
def test_a_cancelled_next_raises_cancelled_error(redis_url: str, queue: str) -> None:
    async def scenario() -> list[int]:
        r = redis.asyncio.Redis.from_url(redis_url)
        consumer = aoz.Consumer(r, queue, heartbeat_timeout=5.0)
        swallowed = []
        try:
            for turns in [t for t in range(1, 30) for _ in range(4)]:
                taking = asyncio.ensure_future(consumer.next(timeout=0.05))
                for _ in range(turns):
                    await asyncio.sleep(0)
                if taking.done():
                    continue
                taking.cancel()
                try:
                    await taking
                except asyncio.CancelledError:
                    continue
                swallowed.append(turns)
            return swallowed
        finally:
            await consumer.close()
            await r.aclose()

    assert asyncio.run(scenario()) == []
