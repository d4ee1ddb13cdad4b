"""The ``orizuru`` command (also ``python -m orizuru_py``): its command line, parsed here;
what each subcommand does is in ``commands``.

argparse, not click or typer: no dependency; options shared by every subcommand can be
given before or after it (click's group options cannot follow the subcommand); and
the dashboard and the benchmark plug their options in through ``add_arguments(parser)``.
Each error is one line on stderr: exit 2 for a bad command line, 1 for anything else.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import redis

from ..consumer import DEFAULT_HEARTBEAT_TIMEOUT, DEFAULT_MAX_ATTEMPTS
from ..keys import QueueKeys, validate_name
from ..worker import DEFAULT_GC_INTERVAL
from . import bench, logs
from . import commands as c
from .clients import safe
from .commands import DEFAULT_URL
from .queue import MAX_PEEK, WHERE

PREFIX = "orizuru"


class Parser(argparse.ArgumentParser):
    """Errors in one line, naming where to read more."""

    def error(self, message: str) -> NoReturn:
        print(f"orizuru: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


# -- argument types ---------------------------------------------------------------


def _number(kind: Callable[[str], Any], name: str, strict: bool) -> Callable[[str], Any]:
    """A converter to ``kind`` that refuses negative values (and 0, if strict)."""
    bound = "> 0" if strict else ">= 0"

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {name} {bound}, got {text!r}") from None
        if value < 0 or (strict and value == 0) or value != value:  # NaN too
            raise argparse.ArgumentTypeError(f"must be {name} {bound}, got {text!r}")
        return value

    return convert


positive_int = _number(int, "an integer", strict=True)
positive_float = _number(float, "a number", strict=True)
non_negative_float = _number(float, "a number", strict=False)


def port(text: str) -> int:
    value: int = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535, got {text!r}")
    return value


def queue_name(text: str) -> str:
    try:
        return validate_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def redis_url(text: str) -> str:
    try:
        redis.Redis.from_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a Redis URL: {exc}") from None
    return text


def prefix(text: str) -> str:
    try:
        QueueKeys("x", text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


# -- the parser -------------------------------------------------------------------


def _globals(p: argparse.ArgumentParser, top: bool) -> None:
    """The options every subcommand takes, before or after its name. After it they
    default to nothing, so they never overwrite one given before it."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    g = p.add_argument_group("global options")
    g.add_argument(
        "--redis-url",
        type=redis_url,
        default=default(None),
        metavar="URL",
        help=f"the server (default: $REDIS_URL, else {DEFAULT_URL})",
    )
    g.add_argument(
        "--sentinel",
        default=default(None),
        metavar="HOST:PORT[,HOST:PORT...]",
        help="find the server through these Redis Sentinels and follow its failovers, "
        "with --master (default: no Sentinel)",
    )
    g.add_argument(
        "--master",
        default=default(None),
        metavar="NAME",
        help="the name the sentinels monitor the server under, with --sentinel (default: none)",
    )
    g.add_argument(
        "--prefix",
        type=prefix,
        default=default(PREFIX),
        help=f"prefix of every key: one per application sharing a server (default: {PREFIX})",
    )
    g.add_argument(
        "--log-level",
        type=str.upper,
        choices=logs.LEVELS,
        default=default("INFO"),
        metavar="LEVEL",
        help=f"{', '.join(logs.LEVELS)} (default: INFO)",
    )


def _worker_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("handler", metavar="module:function", help="the function to call")
    s.add_argument(
        "queues",
        nargs="+",
        type=queue_name,
        metavar="QUEUE",
        help="queues to take from; with several, each is taken from only while those "
        "before it are empty",
    )
    s.add_argument(
        "--concurrency",
        type=positive_int,
        default=None,
        help="handlers at once per process: threads, or tasks for an async def handler "
        "(default: 8 threads, 100 tasks)",
    )
    s.add_argument(
        "--processes",
        type=positive_int,
        default=1,
        help="worker processes, for handlers that need more than one core; more than 1 "
        "runs a supervisor that restarts those that die (default: %(default)s)",
    )
    s.add_argument(
        "--metrics-port",
        type=port,
        metavar="PORT",
        help="serve Prometheus metrics on http://0.0.0.0:PORT/metrics, extra 'metrics' "
        "(default: no metrics)",
    )
    s.add_argument(
        "--max-attempts",
        type=positive_int,
        default=DEFAULT_MAX_ATTEMPTS,
        help="deliveries before a failing message is dead-lettered (default: %(default)s)",
    )
    s.add_argument(
        "--heartbeat-timeout",
        type=positive_float,
        default=DEFAULT_HEARTBEAT_TIMEOUT,
        metavar="SECONDS",
        help="silence after which this worker counts as dead and its messages are "
        "recovered (default: %(default)s)",
    )
    s.add_argument(
        "--gc-interval",
        type=non_negative_float,
        default=DEFAULT_GC_INTERVAL,
        metavar="SECONDS",
        help="seconds between garbage-collector passes inside the worker; 0 disables "
        "(default: %(default)s)",
    )
    s.add_argument(
        "--pass-guard",
        action="store_true",
        help="call the handler with the MessageGuard instead of the payload (default: off)",
    )
    _codec_argument(s)


def _codec_argument(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--codec",
        metavar="module:codec",
        help="the queue's codec: an instance, or a class made with no arguments (default: msgpack)",
    )


def _sub(
    sub: Any, name: str, func: Callable[[argparse.Namespace], int], help: str, **kw: Any
) -> argparse.ArgumentParser:
    s: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help, **kw)
    _globals(s, top=False)
    s.set_defaults(func=func)
    return s


def _queue_arg(s: argparse.ArgumentParser) -> None:
    s.add_argument("queue", type=queue_name, help="the queue's name")


def _queues_arg(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "queues",
        nargs="*",
        type=queue_name,
        metavar="QUEUE",
        help="queues to show (default: every queue in the registry)",
    )


def parser(dashboard: bool = False) -> argparse.ArgumentParser:
    """The command line. ``dashboard``: import the dashboard to add its options (only
    when that is the command: it is an extra, and slow to import)."""
    p = Parser(prog="orizuru", description="A reliable message queue on Redis lists.")
    p.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {importlib.metadata.version('orizuru_py')}",
    )
    _globals(p, top=True)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    s = _sub(sub, "stats", c.cmd_stats, "counts and consumers of queues")
    _queues_arg(s)
    s.add_argument("--json", action="store_true", help='print {"queues": [...]} (default: a table)')
    s.add_argument(
        "--watch",
        type=positive_float,
        metavar="SECONDS",
        help="print again every SECONDS until Ctrl-C (default: once)",
    )

    s = _sub(sub, "top", c.cmd_top, "a live full-screen view of every queue and consumer")
    _queues_arg(s)
    s.add_argument(
        "--interval",
        type=positive_float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between refreshes (default: %(default)s)",
    )

    s = _sub(sub, "peek", c.cmd_peek, "show messages of a queue without taking them")
    _queue_arg(s)
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
    _codec_argument(s)

    s = _sub(sub, "purge", c.cmd_purge, "delete a queue's waiting, delayed and unacked messages")
    _queue_arg(s)
    s.add_argument(
        "--dead", action="store_true", help="delete the dead letters too (default: kept)"
    )
    s.add_argument(
        "--yes",
        action="store_true",
        help="do not ask: needed where stdin is not a terminal (default: ask)",
    )

    s = _sub(sub, "requeue", c.cmd_requeue, "move a queue's dead letters back to it")
    _queue_arg(s)

    s = _sub(sub, "gc", c.cmd_gc, "return what dead consumers held, rejected and due messages")
    _queue_arg(s)
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

    for name, func, what in (
        ("pause", c.cmd_pause, "take nothing from a queue (pushes still land) until resumed"),
        ("resume", c.cmd_resume, "take from a paused queue again"),
    ):
        _queue_arg(_sub(sub, name, func, what))
    s = _sub(
        sub, "cancel", c.cmd_cancel, "make sure a waiting or delayed message is never delivered"
    )
    _queue_arg(s)
    s.add_argument("id", help="the message's id")

    s = _sub(sub, "worker", c.cmd_worker, "run module:function on every message of the queues")
    _worker_arguments(s)

    s = _sub(sub, "server", c.cmd_server, "run an embedded Valkey for local development")
    s.add_argument(
        "--port", type=port, default=6379, help="port on 127.0.0.1 (default: %(default)s)"
    )
    s.add_argument(
        "--dir",
        metavar="DIR",
        help="keep the data here, saved at a clean stop (default: in memory only)",
    )
    s.add_argument(
        "--appendonly",
        action="store_true",
        help="also log every write to an append-only file, fsynced each second (default: off)",
    )

    s = _sub(
        sub, "demo", c.cmd_demo, "push, consume, SIGKILL a consumer, recover: count what is lost"
    )
    s.add_argument("--messages", type=positive_int, default=10_000, help="(default: %(default)s)")
    s.add_argument(
        "--consumers",
        type=positive_int,
        default=3,
        help="consumer processes (default: %(default)s)",
    )

    s = _sub(sub, "bench", c.cmd_bench, "measure orizuru_py's throughput (benchmarks/ adds peers)")
    bench.add_arguments(s)

    help = "the web dashboard (extra 'dashboard')"
    s = _sub(sub, "dashboard", c.cmd_dashboard, help, add_help=dashboard)
    if dashboard:
        c.dashboard_module().add_arguments(s)
    return p


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; the dashboard's own options are read only when it is the command."""
    first, _ = parser().parse_known_args(argv)
    if first.command != "dashboard":
        args = parser().parse_args(argv)
    else:
        try:
            full = parser(dashboard=True)
        except ImportError as exc:
            raise c.CliError(
                f"the dashboard is not installed ({exc}): pip install 'orizuru_py[dashboard]'"
            ) from None
        args = full.parse_args(argv)
    env_url = os.environ.get("REDIS_URL")
    if not args.redis_url and env_url:
        try:
            redis_url(env_url)
        except argparse.ArgumentTypeError as exc:
            raise c.UsageError(f"$REDIS_URL: {exc}") from None
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parse(sys.argv[1:] if argv is None else argv)
        if bool(getattr(args, "sentinel", None)) != bool(getattr(args, "master", None)):
            raise c.UsageError("--sentinel and --master go together")
        logs.setup(args.log_level)
        return int(args.func(args))
    except c.UsageError as exc:
        return _fail(str(exc), 2)
    except c.CliError as exc:
        return _fail(str(exc), 1)
    except ValueError as exc:  # a bad argument the library caught
        return _fail(str(exc), 2)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        return _fail(f"cannot reach {safe(c.url_of(args))}: {exc}", 1)
    except redis.RedisError as exc:
        return _fail(f"{type(exc).__name__}: {exc}", 1)
    except BrokenPipeError:  # stdout closed early (`orizuru stats | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a port in use, a server that would not start
        return _fail(str(exc), 1)
    except KeyboardInterrupt:
        return 130


def _fail(message: str, code: int) -> int:
    print(f"orizuru: error: {message}", file=sys.stderr)
    return code
