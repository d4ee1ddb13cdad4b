"""``orizuru schedule add|list|remove`` (periodic messages) and ``orizuru scheduler``, which
pushes their due ticks without handling messages (workers push them too, as they beat)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ...schedule import DEFAULT_INTERVAL, Schedule, ScheduleEntry
from .. import views
from ..loading import load_codec
from .common import (
    CliError,
    Command,
    UsageError,
    client_of,
    codec_arg,
    log,
    positive_float,
    queue_name,
    until_signal,
)

ACTIONS = ("add", "list", "remove")


def schedule_options(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "action", choices=ACTIONS, help="add (or replace) an entry, list them, remove one"
    )
    s.add_argument("name", nargs="?", help="the entry's name (add, remove)")
    s.add_argument("queue", nargs="?", type=queue_name, help="the queue it pushes to (add)")
    s.add_argument(
        "--cron",
        metavar="EXPR",
        help='add: when, as five cron fields ("0 3 * * *": at 03:00 every day) (default: none)',
    )
    s.add_argument(
        "--tz",
        metavar="ZONE",
        help="add: the time zone --cron is read in, such as Europe/Berlin (default: UTC)",
    )
    s.add_argument(
        "--every",
        type=positive_float,
        metavar="SECONDS",
        help="add: every SECONDS instead of --cron (default: none)",
    )
    s.add_argument(
        "--payload",
        metavar="JSON",
        default="null",
        help="add: the message, as JSON, encoded with the codec (default: null)",
    )
    s.add_argument(
        "--json", action="store_true", help='list: print {"schedules": [...]} (default: a table)'
    )
    codec_arg(s)


def _payload(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"--payload is not JSON: {exc}") from None


def _when(entry: ScheduleEntry) -> str:
    due = entry.next_due
    if due is None:
        return "no next due time"
    stamp = due.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"next due {stamp} ({views.due_text(entry.next_due_ms, int(time.time() * 1000))})"


def cmd_schedule(args: argparse.Namespace) -> int:
    wanted = {"add": ("name", "queue"), "remove": ("name",), "list": ()}[args.action]
    for field in ("name", "queue"):
        if field in wanted and getattr(args, field) is None:
            raise UsageError(f"schedule {args.action} needs {field.upper()}")
        if field not in wanted and getattr(args, field) is not None:
            raise UsageError(f"schedule {args.action} takes no {field.upper()}")
    sched = Schedule(client_of(args), prefix=args.prefix, codec=load_codec(args.codec))
    if args.action == "add":
        entry = sched.add(
            args.name,
            args.queue,
            _payload(args.payload),
            cron=args.cron,
            every=args.every,
            tz=args.tz,
        )
        print(f"{entry.name}: to {entry.queue}, {entry.cadence}, {_when(entry)}")
        return 0
    if args.action == "remove":
        if not sched.remove(args.name):
            raise CliError(f"no periodic entry named {args.name!r} (prefix {args.prefix!r})")
        print(f"removed {args.name}")
        return 0
    return _list(sched, args.json)


def _list(sched: Schedule, as_json: bool) -> int:
    entries = sched.list()
    if as_json:
        print(json.dumps({"schedules": [e.to_json() for e in entries]}, default=repr))
    elif not entries:
        print("no periodic entries (orizuru schedule add adds one)")
    else:
        print(views.schedule_text(entries, int(time.time() * 1000), payloads=True))
    return 0


def scheduler_options(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--interval",
        type=positive_float,
        default=DEFAULT_INTERVAL,
        metavar="SECONDS",
        help="look for new entries at least every SECONDS; a known entry is pushed when "
        "due (default: %(default)s)",
    )


def cmd_scheduler(args: argparse.Namespace) -> int:
    sched = Schedule(client_of(args), prefix=args.prefix)
    log.info(
        "scheduler of prefix %s: pushing periodic messages when due; Ctrl-C stops", args.prefix
    )
    return until_signal(lambda: sched.run(args.interval), sched.stop)


COMMANDS = (
    Command("schedule", "add, list or remove periodic messages", schedule_options, cmd_schedule),
    Command(
        "scheduler",
        "push periodic messages when due, handling none (workers push them too)",
        scheduler_options,
        cmd_scheduler,
    ),
)
