"""A Worker that follows its primary through Sentinel, for the failover tests.

Usage: python -m tests.sentinel_child SENTINELS MASTER QUEUE LEDGER_URL [asyncio]

SENTINELS is host:port,host:port,...; each handled message id goes into the set
``QUEUE:handled`` on LEDGER_URL (another server: the ledger must not fail over), and
``QUEUE:handlings`` counts the handler calls (the two differ by the duplicates).
SIGTERM stops it gracefully.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

import orizuru_py
import orizuru_py.asyncio


def main() -> None:
    sentinels, master, queue, ledger_url = sys.argv[1:5]
    mode = sys.argv[5] if len(sys.argv) > 5 else "blocking"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    addresses = [(h, int(p)) for h, p in (a.split(":") for a in sentinels.split(","))]
    ledger = redis.Redis.from_url(ledger_url)
    key, calls = f"{queue}:handled", f"{queue}:handlings"

    def record(message_id: str) -> None:
        ledger.pipeline(transaction=False).sadd(key, message_id).incr(calls).execute()

    options = {"heartbeat_timeout": 2.0, "gc_interval": 0.5, "concurrency": 4}
    if mode == "asyncio":

        async def run() -> None:
            sentinel = redis.asyncio.sentinel.Sentinel(
                addresses, sentinel_kwargs={"socket_timeout": 1.0}
            )
            client = sentinel.master_for(master, socket_timeout=1.0)

            async def handle(guard: orizuru_py.asyncio.MessageGuard) -> None:
                await asyncio.to_thread(record, guard.id)

            worker = orizuru_py.asyncio.Worker(client, queue, handle, pass_guard=True, **options)
            await worker.run()

        asyncio.run(run())
        return
    sentinel = redis.sentinel.Sentinel(addresses, sentinel_kwargs={"socket_timeout": 1.0})
    client = sentinel.master_for(master, socket_timeout=1.0)
    orizuru_py.Worker(
        client, queue, lambda guard: record(guard.id), pass_guard=True, **options
    ).run()


if __name__ == "__main__":
    main()
