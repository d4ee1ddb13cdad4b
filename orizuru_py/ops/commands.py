"""What each ``orizuru`` subcommand does, on the parsed command line (``cli`` parses it).
Each returns its exit code; a failure to tell in one line raises ``CliError``."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import redis

from ..collector import CollectReport, GarbageCollector
from . import bench, demo, views
from .clients import client, safe, sentinel_url
from .loading import load_codec, load_handler
from .queue import Peeked, Queue
from .supervisor import Supervisor, WorkerSpec, run_worker

DEFAULT_URL = "redis://127.0.0.1:6379/0"
log = logging.getLogger("orizuru_py.cli")


class CliError(Exception):
    """A failure told in one line (exit 1)."""


class UsageError(CliError):
    """A command line that cannot work as given (exit 2)."""


# -- helpers of the commands ------------------------------------------------------


def url_of(args: argparse.Namespace) -> str:
    """The server: ``--sentinel``/``--master``, else ``--redis-url``, ``$REDIS_URL``, or
    the default."""
    if getattr(args, "sentinel", None):
        return sentinel_url(args.sentinel, args.master)
    url: str = args.redis_url or os.environ.get("REDIS_URL") or DEFAULT_URL
    return url


def _client(args: argparse.Namespace) -> redis.Redis:
    return client(url_of(args))


def _known(r: redis.Redis, name: str, prefix: str) -> Queue:
    """The queue, or a ``CliError`` when it is neither in the registry nor has any key."""
    q = Queue(r, name, prefix=prefix)
    if not r.sismember(q.keys.registry, name) and not r.exists(*q.keys.all_fixed()):
        raise CliError(
            f"unknown queue {name!r} (not in the registry of prefix {prefix!r}, no keys)"
        )
    return q


def describe(report: CollectReport) -> str:
    """A collector's pass in words."""
    if not report:
        return "nothing to do"
    parts = [
        f"{report.requeued} requeued",
        f"{report.dead_lettered} dead-lettered",
        f"{report.consumers_reaped} dead consumer(s) reaped",
        f"{report.promoted} delayed promoted",
        f"{report.released} unstarted handed back",
    ]
    return ", ".join(parts)


def _until_signal(loop: Callable[[], None], stop: Callable[[], None]) -> int:
    """Run ``loop`` until it returns; SIGTERM and Ctrl-C call ``stop`` (exit 0)."""
    previous = signal.signal(signal.SIGTERM, lambda *_: stop())
    try:
        loop()
    except KeyboardInterrupt:
        stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


# -- the commands -----------------------------------------------------------------


def cmd_stats(args: argparse.Namespace) -> int:
    r = _client(args)
    for name in args.queues:
        _known(r, name, args.prefix)

    def show() -> None:
        names = args.queues or Queue.all(r, args.prefix)
        stats = Queue.stats_of(r, names, args.prefix) if names else []
        if args.json:
            print(json.dumps({"queues": [s.to_json() for s in stats]}), flush=True)
            return
        if args.watch:
            print(f"-- {time.strftime('%Y-%m-%d %H:%M:%S')}  {safe(url_of(args))}")
        print(views.stats_text(stats), flush=True)

    show()
    while args.watch:
        time.sleep(args.watch)
        if not args.json:
            print()
        show()
    return 0


def cmd_top(args: argparse.Namespace) -> int:
    try:
        from . import top
    except ImportError as exc:
        raise CliError(f"top needs rich ({exc}): pip install 'orizuru_py[top]'") from None
    return top.run(_client(args), safe(url_of(args)), args.prefix, args.queues, args.interval)


def _peeked_json(m: Peeked) -> dict[str, Any]:
    doc = {k: getattr(m, k) for k in ("id", "attempts", "enqueued_ms", "payload", "error")}
    doc.update(reason=m.reason, dead_ms=m.dead_ms, due_ms=m.due_ms, undecodable=m.id is None)
    if m.error is not None:
        doc["raw"] = repr(m.raw)
    return doc


def _peeked_line(m: Peeked, now_ms: int) -> str:
    if m.id is None:  # the bytes are not a message at all
        line = f"<undecodable: {m.error}>  {m.raw[:80]!r}"
    else:
        payload = repr(m.payload) if m.error is None else f"{m.raw[:80]!r} ({m.error})"
        line = f"{m.id}  attempt {m.attempts}  {payload}"
    if m.due_ms is not None:
        line += f"  [due in {views.age(max(0, m.due_ms - now_ms) / 1000)}]"
    if m.reason is not None:
        line += f"  [dead: {m.reason}]"
    return line


def cmd_peek(args: argparse.Namespace) -> int:
    r = _client(args)
    q = _known(r, args.queue, args.prefix)
    q.codec = load_codec(args.codec) or q.codec
    messages = q.peek(args.n, args.where)
    if args.json:
        doc = {
            "queue": q.name,
            "where": args.where,
            "messages": [_peeked_json(m) for m in messages],
        }
        print(json.dumps(doc, default=repr))
    elif not messages:
        print(f"{args.where} of {q.name}: empty")
    else:
        now_ms = int(time.time() * 1000)
        for m in messages:
            print(_peeked_line(m, now_ms))
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    q = _known(_client(args), args.queue, args.prefix)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("purge deletes messages: pass --yes (no terminal to ask on)")
        s = q.stats()
        what = f"{s.waiting} waiting, {s.delayed} delayed and {s.unacked} unacked message(s)"
        if args.dead:
            what += f" and {s.dead} dead letter(s)"
        answer = input(f"delete {what} of queue {q.name}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 0
    print(f"purged {q.purge(dead=args.dead)} message(s) from {q.name}")
    return 0


def cmd_requeue(args: argparse.Namespace) -> int:
    revived = _known(_client(args), args.queue, args.prefix).requeue_dead()
    print(
        f"requeued {int(revived)} dead letter(s) to {args.queue}; "
        f"{revived.garbage} record(s) that are not messages left dead"
    )
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    r = _client(args)
    _known(r, args.queue, args.prefix)
    gc = GarbageCollector(
        r,
        args.queue,
        max_attempts=args.max_attempts,
        prefix=args.prefix,
        on_report=lambda report: log.info("gc of %s: %s", args.queue, describe(report)),
    )
    if args.interval is None:
        print(f"gc of {args.queue}: {describe(gc.collect())}")
        return 0
    log.info("gc of %s every %g s; Ctrl-C stops", args.queue, args.interval)
    return _until_signal(lambda: gc.run(args.interval), gc.stop)


def cmd_pause(args: argparse.Namespace) -> int:
    Queue(_client(args), args.queue, prefix=args.prefix).pause()
    print(f"paused {args.queue}: nothing is taken until 'orizuru resume {args.queue}'")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    Queue(_client(args), args.queue, prefix=args.prefix).resume()
    print(f"resumed {args.queue}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    q = _known(_client(args), args.queue, args.prefix)
    if q.cancel(args.id):
        print(f"cancelled {args.id}: it will not be delivered")
        return 0
    print(
        f"{args.id} is not waiting or delayed in {q.name}: not cancelled (if a handler has it, "
        "its guard's cancelled is now True)"
    )
    return 1


def cmd_worker(args: argparse.Namespace) -> int:
    load_handler(args.handler)  # fails here, in one line, when it does not import
    load_codec(args.codec)
    if args.metrics_port is not None:
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            raise CliError(
                "--metrics-port needs prometheus_client: pip install 'orizuru_py[metrics]'"
            ) from None
    url = url_of(args)
    client(url).ping()
    spec = WorkerSpec(
        handler=args.handler,
        queues=tuple(args.queues),
        redis_url=url,
        prefix=args.prefix,
        log_level=args.log_level,
        concurrency=args.concurrency,
        max_attempts=args.max_attempts,
        heartbeat_timeout=args.heartbeat_timeout,
        gc_interval=args.gc_interval or None,
        pass_guard=args.pass_guard,
        codec=args.codec,
    )
    if args.processes == 1:
        return run_here(spec, args.metrics_port)
    return Supervisor(spec, args.processes, args.metrics_port).run()


def run_here(spec: WorkerSpec, metrics_port: int | None) -> int:
    """One Worker in this process, with ``/metrics`` on ``metrics_port`` if given."""
    r = client(spec.redis_url)
    observer = None
    if metrics_port is not None:
        from prometheus_client import REGISTRY

        from .metrics import PrometheusObserver, QueueCollector, serve

        observer = PrometheusObserver(spec.queues)
        REGISTRY.register(QueueCollector(r, spec.queues, spec.prefix))
        serve(metrics_port)
    run_worker(spec.worker(observer))
    return 0


def cmd_server(args: argparse.Namespace) -> int:
    from . import server

    return server.run(args.port, args.dir, args.appendonly)


def cmd_demo(args: argparse.Namespace) -> int:
    return demo.main(args.redis_url or os.environ.get("REDIS_URL"), args.messages, args.consumers)


def cmd_bench(args: argparse.Namespace) -> int:
    url = args.redis_url or os.environ.get("REDIS_URL")
    return bench.run(url, args.messages, args.rounds, args.json)


def dashboard_module() -> Any:
    """The dashboard's command module (another helper's: ``add_arguments`` and ``run``)."""
    return importlib.import_module(".dashboard.command", __package__)


def cmd_dashboard(args: argparse.Namespace) -> int:
    return int(dashboard_module().run(_client(args), args))
