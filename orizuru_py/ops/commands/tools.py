"""The subcommands that bring something of their own: ``server`` (a Valkey), ``demo``,
``bench`` and ``dashboard`` (a web server)."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from .. import bench, demo
from .common import Command, client_of, given_url, port, positive_int


def server_options(s: argparse.ArgumentParser) -> None:
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


def cmd_server(args: argparse.Namespace) -> int:
    from .. import server

    return server.run(args.port, args.dir, args.appendonly)


def demo_options(s: argparse.ArgumentParser) -> None:
    s.add_argument("--messages", type=positive_int, default=10_000, help="(default: %(default)s)")
    s.add_argument(
        "--consumers",
        type=positive_int,
        default=3,
        help="consumer processes (default: %(default)s)",
    )


def cmd_demo(args: argparse.Namespace) -> int:
    return demo.main(given_url(args), args.messages, args.consumers)


def cmd_bench(args: argparse.Namespace) -> int:
    return bench.run(given_url(args), args.messages, args.rounds, args.json)


def dashboard_module() -> Any:
    """The dashboard's command module (``add_arguments`` and ``run``)."""
    return importlib.import_module("..dashboard.command", __package__)


def dashboard_options(s: argparse.ArgumentParser) -> None:
    dashboard_module().add_arguments(s)


def cmd_dashboard(args: argparse.Namespace) -> int:
    return int(dashboard_module().run(client_of(args), args))


COMMANDS = (
    Command("server", "run an embedded Valkey for local development", server_options, cmd_server),
    Command(
        "demo",
        "push, consume, SIGKILL a consumer, recover: count what is lost",
        demo_options,
        cmd_demo,
    ),
    Command(
        "bench",
        "measure orizuru_py's throughput (benchmarks/ adds peers)",
        bench.add_arguments,
        cmd_bench,
    ),
    Command(
        "dashboard",
        "the web dashboard (extra 'dashboard')",
        dashboard_options,
        cmd_dashboard,
        lazy=True,
    ),
)
