"""An asyncio Worker in a child process, for tests that signal or kill it.

Usage: python -m tests.async_worker_child URL QUEUE --name N [--concurrency C]
       [--heartbeat-timeout S] [--gc-interval S] [--sleep S] [--ledger URL]

Its handler awaits ``--sleep`` seconds, then records the message in Redis (``--ledger``,
by default URL), so a test can count across processes: ``{QUEUE}:handled`` (a set of
"n"), ``{QUEUE}:handled:calls`` (every call) and ``{QUEUE}:handled:log`` ("n:attempts"
per call). Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

import redis.asyncio

from orizuru_py.asyncio import Worker


async def main(args: argparse.Namespace) -> None:
    r = redis.asyncio.Redis.from_url(args.url)
    ledger = redis.asyncio.Redis.from_url(args.ledger or args.url)
    key = f"{args.queue}:handled"

    async def handler(guard: Any) -> None:
        await asyncio.sleep(args.sleep)
        pipe = ledger.pipeline(transaction=False)
        pipe.sadd(key, guard.payload["n"])
        pipe.incr(f"{key}:calls")
        pipe.rpush(f"{key}:log", f"{guard.payload['n']}:{guard.attempts}")
        await pipe.execute()

    worker = Worker(
        r,
        args.queue,
        handler,
        name=args.name,
        concurrency=args.concurrency,
        heartbeat_timeout=args.heartbeat_timeout,
        gc_interval=args.gc_interval or None,
        pass_guard=True,
    )
    try:
        await worker.run()
    finally:
        await r.aclose()
        await ledger.aclose()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("queue")
    p.add_argument("--name", required=True)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--heartbeat-timeout", type=float, default=1.0)
    p.add_argument("--gc-interval", type=float, default=0.0)
    p.add_argument("--sleep", type=float, default=0.01)
    p.add_argument("--ledger", default="")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(main(p.parse_args()))
