"""A Worker in a child process, for tests that kill it or let a handler kill it.

Usage: python -m tests.worker_child URL QUEUE [QUEUE...] [--name N] [--concurrency C]
       [--max-attempts M] [--heartbeat-timeout S] [--gc-interval S] [--handler mod:fn]

The handler gets the guard (``pass_guard``); ``HANDLED_KEY``/``HANDLER_SLEEP`` reach
tests.handlers as for ``orizuru worker``. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging

import redis

from orizuru_py import Worker


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("queues", nargs="+")
    p.add_argument("--name")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--max-attempts", type=int, default=5)
    p.add_argument("--heartbeat-timeout", type=float, default=1.0)
    p.add_argument("--gc-interval", type=float, default=0.2)
    p.add_argument("--handler", default="tests.handlers:logged")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    module, _, attr = args.handler.partition(":")
    handler = getattr(importlib.import_module(module), attr)
    Worker(
        redis.Redis.from_url(args.url),
        args.queues,
        handler,
        name=args.name,
        concurrency=args.concurrency,
        max_attempts=args.max_attempts,
        heartbeat_timeout=args.heartbeat_timeout,
        gc_interval=args.gc_interval,
        pass_guard=True,
    ).run()


if __name__ == "__main__":
    main()
