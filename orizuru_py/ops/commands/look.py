"""The subcommands that look at queues and change nothing: ``stats``, ``top``, ``peek``."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ...peeking import MAX_PEEK, PEEK_BYTES, WHERE, Peeked
from ...queue import Queue
from ...schedule import Schedule
from .. import views
from ..clients import safe
from ..loading import load_codec
from .common import (
    CliError,
    Command,
    client_of,
    codec_arg,
    known,
    positive_float,
    positive_int,
    queue_arg,
    queues_arg,
    url_of,
)


def stats_options(s: argparse.ArgumentParser) -> None:
    queues_arg(s)
    s.add_argument("--json", action="store_true", help='print {"queues": [...]} (default: a table)')
    s.add_argument(
        "--watch",
        type=positive_float,
        metavar="SECONDS",
        help="print again every SECONDS until Ctrl-C (default: once)",
    )


def cmd_stats(args: argparse.Namespace) -> int:
    r = client_of(args)
    for name in args.queues:
        known(r, name, args.prefix)
    schedule = Schedule(r, prefix=args.prefix)

    def show() -> None:
        names = args.queues or Queue.all(r, args.prefix)
        stats = Queue.stats_of(r, names, args.prefix) if names else []
        entries = [e for e in schedule.list(payloads=False) if e.queue in names]
        if args.json:
            doc = {
                "queues": [s.to_json() for s in stats],
                "schedules": [e.to_json() for e in entries],
            }
            print(json.dumps(doc), flush=True)
            return
        if args.watch:
            print(f"-- {time.strftime('%Y-%m-%d %H:%M:%S')}  {safe(url_of(args))}")
        print(views.stats_text(stats, entries, int(time.time() * 1000)), flush=True)

    show()
    while args.watch:
        time.sleep(args.watch)
        if not args.json:
            print()
        show()
    return 0


def top_options(s: argparse.ArgumentParser) -> None:
    queues_arg(s)
    s.add_argument(
        "--interval",
        type=positive_float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between refreshes (default: %(default)s)",
    )


def cmd_top(args: argparse.Namespace) -> int:
    try:
        from .. import top
    except ImportError as exc:
        raise CliError(f"top needs rich ({exc}): pip install 'orizuru_py[top]'") from None
    return top.run(client_of(args), safe(url_of(args)), args.prefix, args.queues, args.interval)


def peek_options(s: argparse.ArgumentParser) -> None:
    queue_arg(s)
    s.add_argument(
        "-n",
        type=positive_int,
        default=10,
        help=f"how many, at most {MAX_PEEK} (default: %(default)s)",
    )
    s.add_argument(
        "--where",
        choices=WHERE,
        default="waiting",
        help="which list: next up, soonest due, next returned, oldest dead "
        "first (default: %(default)s)",
    )
    s.add_argument("--json", action="store_true", help="print JSON (default: a line each)")
    s.add_argument(
        "--full",
        action="store_true",
        help=f"read whole payloads (default: the first {PEEK_BYTES:,} bytes of each)",
    )
    codec_arg(s)


def _peeked_json(m: Peeked) -> dict[str, Any]:
    doc = {k: getattr(m, k) for k in ("id", "attempts", "enqueued_ms", "payload", "error")}
    doc.update(reason=m.reason, dead_ms=m.dead_ms, due_ms=m.due_ms, undecodable=m.id is None)
    doc.update(size=m.size, truncated=m.truncated)
    if m.truncated:
        doc["head"] = repr(m.head)
    if m.error is not None:
        doc["raw"] = repr(m.raw)
    try:
        json.dumps(m.payload, default=repr)
    except (RecursionError, ValueError):
        doc.update(payload=None, error="nested too deep to print as JSON", raw=repr(m.raw))
    return doc


def _peeked_line(m: Peeked, now_ms: int) -> str:
    if m.id is None:  # the bytes are not a message at all
        line = f"<undecodable: {m.error}>  {m.raw[:80]!r}"
    else:
        payload = views.payload_text(m)
        if m.error is not None:
            payload = f"{m.raw[:80]!r} ({m.error})"
        line = f"{m.id}  attempt {m.attempts}  {payload}"
    if m.truncated:
        line += f"  [first {len(m.head):,} of {m.size:,} bytes: --full shows it all]"
    if m.due_ms is not None:
        line += f"  [due in {views.age(max(0, m.due_ms - now_ms) / 1000)}]"
    if m.reason is not None:
        line += f"  [dead: {m.reason}]"
    return views.printable(line)


def cmd_peek(args: argparse.Namespace) -> int:
    r = client_of(args)
    q = known(r, args.queue, args.prefix)
    q.codec = load_codec(args.codec) or q.codec
    messages = q.peek(args.n, args.where, max_bytes=None if args.full else PEEK_BYTES)
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


COMMANDS = (
    Command("stats", "counts and consumers of queues", stats_options, cmd_stats),
    Command("top", "a live full-screen view of every queue and consumer", top_options, cmd_top),
    Command("peek", "show messages of a queue without taking them", peek_options, cmd_peek),
)
