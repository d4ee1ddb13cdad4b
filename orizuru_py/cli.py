"""The ``orizuru`` command (also ``python -m orizuru_py``)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import redis

from . import admin, bench, demo
from .collector import DEFAULT_MAX_ATTEMPTS, GarbageCollector
from .consumer import DEFAULT_HEARTBEAT_TIMEOUT
from .worker import DEFAULT_GC_INTERVAL, Worker

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def load_handler(path: str) -> Callable[..., Any]:
    """``package.module:function`` to the function, with an error that says what is wrong."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"handler must look like module:function, got {path!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from exc
    handler = module
    for part in attr.split("."):
        if not hasattr(handler, part):
            raise ValueError(f"{module_name!r} has no attribute {attr!r}")
        handler = getattr(handler, part)
    if not callable(handler):
        raise ValueError(f"{path!r} is a {type(handler).__name__}, not a function")
    return handler


def _client(args: argparse.Namespace) -> redis.Redis:
    return redis.Redis.from_url(args.redis_url or os.environ.get("REDIS_URL") or DEFAULT_URL)


def cmd_demo(args: argparse.Namespace) -> int:
    return demo.main(args.redis_url or os.environ.get("REDIS_URL"), args.messages, args.consumers)


def cmd_worker(args: argparse.Namespace) -> int:
    handler = load_handler(args.handler)
    worker = Worker(
        _client(args),
        args.queue,
        handler,
        concurrency=args.concurrency,
        max_attempts=args.max_attempts,
        heartbeat_timeout=args.heartbeat_timeout,
        gc_interval=args.gc_interval or None,
        pass_guard=args.pass_guard,
        prefix=args.prefix,
    )
    worker.run()
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    r = _client(args)
    names = [args.queue] if args.queue else admin.queues(r, args.prefix)
    print(
        f"{'queue':<30} {'waiting':>9} {'delayed':>9} {'unacked':>9} {'dead':>9} "
        f"{'in flight':>9} {'consumers':>9}"
    )
    for name in names:
        s = admin.stats(r, name, args.prefix)
        print(
            f"{name:<30} {s.waiting:>9} {s.delayed:>9} {s.unacked:>9} {s.dead:>9} "
            f"{s.in_flight:>9} {len(s.consumers):>9}"
        )
    return 0


def cmd_peek(args: argparse.Namespace) -> int:
    for m in admin.peek(_client(args), args.queue, args.n, dead=args.dead, prefix=args.prefix):
        reason = f"  [dead: {m.reason}]" if m.reason else ""
        if m.error:
            print(f"<undecodable: {m.error}> {m.payload!r}{reason}")
        else:
            print(f"{m.id}  attempt {m.attempts}  {m.payload!r}{reason}")
    return 0


def cmd_requeue(args: argparse.Namespace) -> int:
    moved, left = admin.requeue_dead(_client(args), args.queue, args.prefix)
    print(f"requeued {moved} dead-lettered message(s); {left} undecodable record(s) left dead")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    n = admin.purge(_client(args), args.queue, dead=args.dead, prefix=args.prefix)
    print(f"purged {n} message(s) from {args.queue}")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    gc = GarbageCollector(
        _client(args), args.queue, max_attempts=args.max_attempts, prefix=args.prefix
    )
    if not args.interval:
        print(gc.collect())
        return 0
    stop = threading.Event()
    try:
        gc.run(args.interval, stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    url = args.redis_url or os.environ.get("REDIS_URL")
    return bench.run(url, args.messages, args.rounds, args.json)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="orizuru", description="A reliable queue on Redis lists.")
    p.add_argument("--redis-url", help=f"server to use (default: $REDIS_URL or {DEFAULT_URL})")
    p.add_argument("--prefix", default="orizuru", help="key prefix (default: orizuru)")
    p.add_argument("--log-level", default="INFO")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("demo", help="push, consume, kill a consumer, recover: count what is lost")
    s.add_argument("--messages", type=int, default=10_000)
    s.add_argument("--consumers", type=int, default=3)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("worker", help="run module:function on every message of QUEUE")
    s.add_argument("handler", metavar="module:function")
    s.add_argument("queue")
    s.add_argument("--concurrency", type=int, default=8)
    s.add_argument("--max-attempts", type=int, default=DEFAULT_MAX_ATTEMPTS)
    s.add_argument("--heartbeat-timeout", type=float, default=DEFAULT_HEARTBEAT_TIMEOUT)
    s.add_argument(
        "--gc-interval",
        type=float,
        default=DEFAULT_GC_INTERVAL,
        help="seconds between GC passes inside the worker; 0 disables",
    )
    s.add_argument(
        "--pass-guard",
        action="store_true",
        help="call the handler with the MessageGuard instead of the payload",
    )
    s.set_defaults(func=cmd_worker)

    s = sub.add_parser("stats", help="sizes of a queue's lists (all queues without QUEUE)")
    s.add_argument("queue", nargs="?")
    s.set_defaults(func=cmd_stats)

    s = sub.add_parser("peek", help="show the next messages without taking them")
    s.add_argument("queue")
    s.add_argument("-n", type=int, default=10)
    s.add_argument("--dead", action="store_true", help="show the dead-letter list instead")
    s.set_defaults(func=cmd_peek)

    s = sub.add_parser("requeue", help="move dead-lettered messages back to the queue")
    s.add_argument("queue")
    s.set_defaults(func=cmd_requeue)

    s = sub.add_parser("purge", help="delete waiting, delayed and rejected messages")
    s.add_argument("queue")
    s.add_argument("--dead", action="store_true", help="delete the dead-letter list too")
    s.set_defaults(func=cmd_purge)

    s = sub.add_parser("gc", help="return unsettled messages of dead consumers to the queue")
    s.add_argument("queue")
    s.add_argument("--max-attempts", type=int, default=DEFAULT_MAX_ATTEMPTS)
    s.add_argument("--interval", type=float, default=0, help="repeat every N seconds")
    s.set_defaults(func=cmd_gc)

    s = sub.add_parser("bench", help="measure orizuru_py's throughput (benchmarks/ adds the peers)")
    bench.add_arguments(s)
    s.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args))
    except ValueError as exc:
        print(f"orizuru: error: {exc}", file=sys.stderr)
        return 2
