"""The subcommands that change a queue: ``purge``, ``requeue``, ``gc``, ``pause``,
``resume``, ``cancel``."""

from __future__ import annotations

import argparse
import sys

from ...checks import DEFAULT_MAX_ATTEMPTS
from ...collector import CollectReport, GarbageCollector
from ...queue import Queue
from .common import (
    Command,
    UsageError,
    client_of,
    known,
    log,
    positive_float,
    positive_int,
    queue_arg,
    until_signal,
)


def purge_options(s: argparse.ArgumentParser) -> None:
    queue_arg(s)
    s.add_argument(
        "--dead", action="store_true", help="delete the dead letters too (default: kept)"
    )
    s.add_argument(
        "--yes",
        action="store_true",
        help="do not ask: needed where stdin is not a terminal (default: ask)",
    )


def cmd_purge(args: argparse.Namespace) -> int:
    q = known(client_of(args), args.queue, args.prefix)
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
    revived = known(client_of(args), args.queue, args.prefix).requeue_dead()
    print(
        f"requeued {int(revived)} dead letter(s) to {args.queue}; "
        f"{revived.garbage} record(s) that are not messages left dead"
    )
    return 0


def gc_options(s: argparse.ArgumentParser) -> None:
    queue_arg(s)
    s.add_argument(
        "--max-attempts",
        type=positive_int,
        default=DEFAULT_MAX_ATTEMPTS,
        help="deliveries after which a message is dead-lettered instead (default: %(default)s)",
    )
    s.add_argument(
        "--interval",
        type=positive_float,
        metavar="SECONDS",
        help="pass again every SECONDS, logging each, until Ctrl-C (default: one pass)",
    )


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


def cmd_gc(args: argparse.Namespace) -> int:
    r = client_of(args)
    known(r, args.queue, args.prefix)
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
    return until_signal(lambda: gc.run(args.interval), gc.stop)


def cmd_pause(args: argparse.Namespace) -> int:
    Queue(client_of(args), args.queue, prefix=args.prefix).pause()
    print(f"paused {args.queue}: nothing is taken until 'orizuru resume {args.queue}'")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    Queue(client_of(args), args.queue, prefix=args.prefix).resume()
    print(f"resumed {args.queue}")
    return 0


def cancel_options(s: argparse.ArgumentParser) -> None:
    queue_arg(s)
    s.add_argument("id", help="the message's id")


def cmd_cancel(args: argparse.Namespace) -> int:
    q = known(client_of(args), args.queue, args.prefix)
    if q.cancel(args.id):
        print(f"cancelled {args.id}: it will not be delivered")
        return 0
    print(
        f"{args.id} is not waiting or delayed in {q.name}: not cancelled (if a handler has it, "
        "its guard's cancelled is now True)"
    )
    return 1


COMMANDS = (
    Command(
        "purge", "delete a queue's waiting, delayed and unacked messages", purge_options, cmd_purge
    ),
    Command("requeue", "move a queue's dead letters back to it", queue_arg, cmd_requeue),
    Command("gc", "return what dead consumers held, rejected and due messages", gc_options, cmd_gc),
    Command(
        "pause",
        "take nothing from a queue (pushes still land) until resumed",
        queue_arg,
        cmd_pause,
    ),
    Command("resume", "take from a paused queue again", queue_arg, cmd_resume),
    Command(
        "cancel",
        "make sure a waiting or delayed message is never delivered",
        cancel_options,
        cmd_cancel,
    ),
)
