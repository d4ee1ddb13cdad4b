"""The ``orizuru`` command (also ``python -m orizuru_py``): the parser, the options every
subcommand shares, and how a failure ends. Each subcommand's own options and what it does
are in ``commands/`` (one module per group).

argparse, not click or typer: no dependency; options shared by every subcommand can be
given before or after it (click's group options cannot follow the subcommand); and
the dashboard and the benchmark plug their options in through ``add_arguments(parser)``.
Each error is one line on stderr: exit 2 for a bad command line, 1 for anything else.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import redis

from .. import __version__
from . import logs
from .clients import DEFAULT_URL, REFUSED, URL_VARIABLES, environment_url, safe
from .commands import COMMANDS, CliError, Command, UsageError
from .commands.common import prefix, redis_url, url_of

PREFIX = "orizuru"


class Parser(argparse.ArgumentParser):
    """Errors in one line, naming where to read more."""

    def error(self, message: str) -> NoReturn:
        print(f"orizuru: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


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
        help=f"the server (default: ${', else $'.join(URL_VARIABLES)}, else {DEFAULT_URL})",
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


def _add(sub: Any, command: Command, full: str | None) -> None:
    """``command``'s parser: the global options, then its own (a lazy command's only when
    it is ``full``, else it has no ``--help`` of its own either)."""
    complete = not command.lazy or command.name == full
    s: argparse.ArgumentParser = sub.add_parser(
        command.name, help=command.help, description=command.help, add_help=complete
    )
    _globals(s, top=False)
    s.set_defaults(func=command.run)
    if complete:
        command.options(s)


def parser(full: str | None = None) -> argparse.ArgumentParser:
    """The command line; ``full`` names the lazy command whose options to add (only when
    it is the command: they import an extra, slow to load or missing)."""
    p = Parser(prog="orizuru", description="A reliable message queue on Redis lists.")
    p.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {__version__}",
    )
    _globals(p, top=True)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        _add(sub, command, full)
    return p


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; a lazy command's own options are read only when it is the command."""
    first, _ = parser().parse_known_args(argv)
    if not any(c.lazy and c.name == first.command for c in COMMANDS):
        args = parser().parse_args(argv)
    else:
        try:
            full = parser(full=first.command)
        except ImportError as exc:
            name = first.command
            raise CliError(
                f"the {name} is not installed ({exc}): pip install 'orizuru_py[{name}]'"
            ) from None
        args = full.parse_args(argv)
    named = environment_url()
    if not args.redis_url and named:
        try:
            redis_url(named[1])
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"${named[0]}: {exc}") from None
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parse(sys.argv[1:] if argv is None else argv)
        if bool(getattr(args, "sentinel", None)) != bool(getattr(args, "master", None)):
            raise UsageError("--sentinel and --master go together")
        logs.setup(args.log_level)
        return int(args.func(args))
    except UsageError as exc:
        return _fail(str(exc), 2)
    except CliError as exc:
        return _fail(str(exc), 1)
    except ValueError as exc:  # a bad argument the library caught
        return _fail(str(exc), 2)
    except redis.RedisError as exc:
        return _fail(_server_error(safe(url_of(args)), exc), 1)
    except BrokenPipeError:  # stdout closed early (`orizuru stats | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a port in use, a server that would not start
        return _fail(str(exc), 1)
    except KeyboardInterrupt:
        return 130


def _server_error(url: str, exc: redis.RedisError) -> str:
    """What went wrong with the server at ``url``, which the line names: unreachable, or
    it answered with a refusal (a wrong password, a database it does not have)."""
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError) and not isinstance(exc, REFUSED):
        return f"cannot reach {url}: {exc}"
    return f"{url}: {type(exc).__name__}: {exc}"


def _fail(message: str, code: int) -> int:
    print(f"orizuru: error: {message}", file=sys.stderr)
    return code
