"""What the subcommands share: how one is declared (``Command``), the errors that end it in
one line, the converters of its arguments, and the server and queue it acts on."""

from __future__ import annotations

import argparse
import logging
import signal
from collections.abc import Callable
from typing import Any

import attrs
import redis

from ...keys import QueueKeys, validate_name
from ...queue import Queue
from ..clients import DEFAULT_URL, client, environment_url, sentinel_url

log = logging.getLogger("orizuru_py.cli")


class CliError(Exception):
    """A failure told in one line (exit 1)."""


class UsageError(CliError):
    """A command line that cannot work as given (exit 2)."""


@attrs.frozen
class Command:
    """A subcommand: its name and one-line help, the function that adds its options to
    its parser, and the function that runs it on the parsed command line (its exit
    code). ``lazy``: its options are added only when it is the command (they import
    an extra that is slow to load or may be missing)."""

    name: str
    help: str
    options: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    lazy: bool = False


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


# -- arguments several subcommands take --------------------------------------------


def queue_arg(s: argparse.ArgumentParser) -> None:
    s.add_argument("queue", type=queue_name, help="the queue's name")


def queues_arg(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "queues",
        nargs="*",
        type=queue_name,
        metavar="QUEUE",
        help="queues to show (default: every queue in the registry)",
    )


def codec_arg(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--codec",
        metavar="module:codec",
        help="the queue's codec: an instance, or a class made with no arguments (default: msgpack)",
    )


# -- the server and the queue -------------------------------------------------------


def given_url(args: argparse.Namespace) -> str | None:
    """The server the user named: ``--redis-url``, else ``$ORIZURU_REDIS_URL``, else
    ``$REDIS_URL``; None if none of them is set."""
    if args.redis_url:
        return str(args.redis_url)
    named = environment_url()
    return named[1] if named else None


def url_of(args: argparse.Namespace) -> str:
    """The server: ``--sentinel``/``--master``, else the one the user named, else the
    default."""
    if getattr(args, "sentinel", None):
        return sentinel_url(args.sentinel, args.master)
    return given_url(args) or DEFAULT_URL


def client_of(args: argparse.Namespace) -> redis.Redis:
    return client(url_of(args))


def known(r: redis.Redis, name: str, prefix: str) -> Queue:
    """The queue, or a ``CliError`` when it is neither in the registry nor has any key."""
    q = Queue(r, name, prefix=prefix)
    if not r.sismember(q.keys.registry, name) and not r.exists(*q.keys.all_fixed()):
        raise CliError(
            f"unknown queue {name!r} (not in the registry of prefix {prefix!r}, no keys)"
        )
    return q


def until_signal(loop: Callable[[], None], stop: Callable[[], None]) -> int:
    """Run ``loop`` until it returns; SIGTERM and Ctrl-C call ``stop`` (exit 0)."""
    previous = signal.signal(signal.SIGTERM, lambda *_: stop())
    try:
        loop()
    except KeyboardInterrupt:
        stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
