"""A consumer process for the fault tests: ``python -m tests.faults.child URL QUEUE MODE``.

MODE ``consumer`` runs a plain ``Consumer`` loop, ``worker`` runs a ``Worker``,
``async-worker`` the asyncio Worker on an asyncio client of the same URL. Each
handled message is recorded in the ledger before it is acked; an ack that returns
False is counted as late. SIGTERM stops it gracefully (exit 0). Only ``next_batch``
and a running Worker are left to survive connection errors on their own; the
handler's own writes, and starting up (``Consumer()`` and ``Worker.run()`` raise
when Redis cannot be reached at start), are retried here, as an application would.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orizuru_py import Consumer, MessageGuard, Worker
from orizuru_py.asyncio import MessageGuard as AsyncGuard
from orizuru_py.asyncio import Worker as AsyncWorker

from .ledger import CLIENT_STYLES, Ledger, connect

T = TypeVar("T")
PERSIST_FOR = 60.0  # seconds a handler keeps retrying one write before it gives up


def persist(action: Callable[[], T]) -> T:
    """Run ``action``, retrying connection errors with backoff for up to PERSIST_FOR s."""
    pause, end = 0.02, time.monotonic() + PERSIST_FOR
    while True:
        try:
            return action()
        except (RedisConnectionError, RedisTimeoutError):
            if time.monotonic() > end:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


class Handler:
    """Works ``work_ms`` on a message, then records it in the ledger."""

    def __init__(self, ledger: Ledger, name: str, work_ms: float) -> None:
        self.ledger, self.name, self.work = ledger, name, work_ms / 1000
        self._seq = itertools.count()

    def __call__(self, guard: MessageGuard | AsyncGuard) -> None:
        if self.work:
            time.sleep(self.work)
        token = f"{guard.id}:{self.name}:{next(self._seq)}"
        persist(lambda: self.ledger.record(guard.id, token))


def run_consumer(r: Any, args: argparse.Namespace, handle: Handler, ledger: Ledger) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    consumer = persist(
        lambda: Consumer(r, args.queue, name=args.name, heartbeat_timeout=args.heartbeat_timeout)
    )
    while not stop.is_set():
        # A take rides out an outage for its timeout, then says so: retried here.
        for guard in persist(lambda: consumer.next_batch(args.batch, timeout=0.2)):
            handle(guard)
            if not persist(guard.ack):
                persist(ledger.late)
    persist(consumer.close)


def worker_options(args: argparse.Namespace) -> dict[str, Any]:
    """What both worker modes are given from the command line."""
    return {
        "pass_guard": True,
        "name": args.name,
        "concurrency": args.concurrency,
        "max_attempts": args.max_attempts,
        "heartbeat_timeout": args.heartbeat_timeout,
        "gc_interval": args.gc_interval or None,
    }


def run_worker(r: Any, args: argparse.Namespace, handle: Handler, ledger: Ledger) -> None:
    def start() -> None:
        worker = Worker(r, args.queue, handle, **worker_options(args))
        try:
            worker.run()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if worker.consumer is not None:
                raise RuntimeError("the worker failed after it started") from exc
            raise  # it could not start: persist tries a new one

    persist(start)


def run_async_worker(r: Any, args: argparse.Namespace, handle: Handler, ledger: Ledger) -> None:
    """The handler records through the blocking ledger in a thread, as an asyncio app
    wraps a blocking call."""

    async def handler(guard: AsyncGuard) -> None:
        await asyncio.to_thread(handle, guard)

    async def start() -> None:
        ar = redis.asyncio.Redis.from_url(args.url)
        worker = AsyncWorker(ar, args.queue, handler, **worker_options(args))
        try:
            await worker.run()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if worker.consumer is not None:
                raise RuntimeError("the worker failed after it started") from exc
            raise  # it could not start: persist tries a new one
        finally:
            await ar.aclose()

    persist(lambda: asyncio.run(start()))


RUN = {"consumer": run_consumer, "worker": run_worker, "async-worker": run_async_worker}


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.faults.child")
    p.add_argument("url")
    p.add_argument("queue")
    p.add_argument("mode", choices=RUN)
    p.add_argument("--name", required=True)
    p.add_argument("--client", choices=CLIENT_STYLES, default="url")
    p.add_argument("--heartbeat-timeout", type=float, default=1.0)
    p.add_argument("--work-ms", type=float, default=0.0)
    p.add_argument("--batch", type=int, default=1, help="consumer mode: next_batch size")
    p.add_argument("--concurrency", type=int, default=2, help="worker modes: threads or tasks")
    p.add_argument("--max-attempts", type=int, default=1000, help="worker mode")
    p.add_argument("--gc-interval", type=float, default=0.0, help="worker mode; 0: no GC")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    r = connect(args.url, args.client)
    ledger = Ledger(r, args.queue)
    handle = Handler(ledger, args.name, args.work_ms)
    RUN[args.mode](r, args, handle, ledger)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
