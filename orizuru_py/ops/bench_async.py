"""orizuru_py's asyncio paths and Worker, measured as ``bench`` measures the blocking ones:
each measurement runs its own event loop and asyncio client, and only the path is timed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio

from ..asyncio import Consumer, Producer, Worker
from .bench import _WAIT, BATCH, fill, message
from .benchdata import Bench, Case, Result, Timer


def measure(
    b: Bench, n: int, body: Callable[[Any], Awaitable[Callable[[], Awaitable[None]] | None]]
) -> Result:
    """Run ``body(client)`` on a fresh loop, timed; the client is made beforehand. What
    ``body`` returns, if anything, is awaited after the timer stops (stopping a worker
    is not timed, as for the blocking Worker and the peers)."""

    async def go() -> Result:
        r = redis.asyncio.Redis.from_url(b.url)
        try:
            with Timer(b.r) as t:
                after = await body(r)
            if after is not None:
                await after()
        finally:
            await r.aclose()
        return t.result(n)

    return asyncio.run(go())


def push(b: Bench, n: int) -> Result:
    """``await Producer.push``, one message per call."""
    queue = b.queue("async-push")
    payloads = [message(i) for i in range(n)]

    async def body(r: Any) -> None:
        producer = Producer(r, queue, prefix=b.prefix)
        for p in payloads:
            await producer.push(p)

    result = measure(b, n, body)
    b.drop(queue)
    return result


def next_ack(b: Bench, n: int) -> Result:
    """``await Consumer.next`` then ``await guard.ack``, one message at a time."""
    queue = b.queue("async-next-ack")
    fill(b, queue, n)

    async def body(r: Any) -> None:
        async with Consumer(r, queue, prefix=b.prefix) as consumer:
            for _ in range(n):
                guard = await consumer.next(timeout=_WAIT)
                if guard is None:
                    raise RuntimeError(f"queue {queue} ran dry")
                await guard.ack()

    result = measure(b, n, body)
    b.drop(queue)
    return result


def batch(b: Bench, n: int) -> Result:
    """``await Consumer.next_batch(BATCH)`` then ``await Consumer.ack_many``."""
    queue = b.queue("async-batch")
    fill(b, queue, n)

    async def body(r: Any) -> None:
        async with Consumer(r, queue, prefix=b.prefix) as consumer:
            got = 0
            while got < n:
                guards = await consumer.next_batch(min(BATCH, n - got), timeout=_WAIT)
                if not guards:
                    raise RuntimeError(f"queue {queue} ran dry")
                await consumer.ack_many(guards)
                got += len(guards)

    result = measure(b, n, body)
    b.drop(queue)
    return result


def worker(
    b: Bench,
    n: int,
    concurrency: int = 100,
    work: Callable[[Any], Awaitable[object]] | None = None,
    **options: Any,
) -> Result:
    """The asyncio ``Worker`` at ``concurrency`` tasks (its default: 100) with a coroutine
    handler that awaits ``work`` (default: nothing), timed from start until every message
    is handled and acked (stopping it is not timed: a fetch blocked on the empty queue
    holds a graceful stop up to 1 s). ``options`` go to the Worker."""
    queue = b.queue("async-worker")
    fill(b, queue, n)

    async def body(r: Any) -> Callable[[], Awaitable[None]]:
        seen = [0]
        done = asyncio.Event()

        async def handler(payload: Any) -> None:
            if work is not None:
                await work(payload)
            seen[0] += 1
            if seen[0] >= n:
                done.set()

        w = Worker(r, queue, handler, concurrency=concurrency, prefix=b.prefix, **options)
        running = asyncio.create_task(w.run())

        async def stop() -> None:
            w.stop()
            await running

        try:
            await asyncio.wait_for(done.wait(), _WAIT)
            while w.stats.handled < n:  # counted once acked
                await asyncio.sleep(0.002)
        except BaseException:
            await stop()
            raise
        return stop

    result = measure(b, n, body)
    b.drop(queue)
    return result


def cases(single: int, batched: int, workers: int, slices: int = 1) -> list[Case]:
    """orizuru_py's asyncio rows; ceilings name ``benchmarks/ceilings_async.py`` rows."""
    return [
        Case("async_worker", "orizuru asyncio Worker no-op, 100 tasks", workers, worker),
        Case("async_push", "orizuru asyncio push", single, push, "raw_async_lpush", slices),
        Case(
            "async_next_ack",
            "orizuru asyncio next + ack",
            single,
            next_ack,
            "raw_async_blmove_lrem",
            slices,
        ),
        Case(
            "async_batch",
            f"orizuru asyncio next_batch({BATCH}) + ack_many",
            batched,
            batch,
            "raw_async_lua_batch",
            slices,
        ),
    ]
