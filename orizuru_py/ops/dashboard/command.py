"""``orizuru dashboard``: its options and how it runs (cli.py wires these two functions).

Nothing optional is imported until ``run``, so the ``orizuru`` command works without
the ``dashboard`` extra and says what to install when this one is asked for.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import redis

from .security import allowed_hosts, exposure_refusal

PASSWORD_ENV = "ORIZURU_DASHBOARD_PASSWORD"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=9181, help="port to bind (default: 9181)")
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name to answer besides localhost, 127.0.0.1, [::1] and --host (the "
        "name users type, or a proxy sends); repeat for more (default: none)",
    )
    p.add_argument(
        "--read-only", action="store_true", help="show everything, offer no action, refuse POSTs"
    )
    p.add_argument(
        "--password",
        help=f"ask for this password (HTTP basic auth; better: set ${PASSWORD_ENV})",
    )
    p.add_argument(
        "--refresh", type=float, default=2.0, help="seconds between the page's updates (default 2)"
    )


def run(r: redis.Redis, args: argparse.Namespace) -> int:
    """Serve the dashboard until interrupted."""
    try:
        import uvicorn

        from .app import Settings, create_app
    except ImportError as exc:
        print(
            f"orizuru: error: the dashboard needs its extra: pip install 'orizuru_py[dashboard]' "
            f"({exc})",
            file=sys.stderr,
        )
        return 1
    password = args.password or os.environ.get(PASSWORD_ENV) or None
    refusal = exposure_refusal(args.host, args.read_only, password)
    try:
        allowed_hosts(args.host, args.allowed_host)
    except ValueError as exc:
        refusal = f"--allowed-host: {exc}"
    if refusal:
        print(f"orizuru: error: {refusal}", file=sys.stderr)
        return 1
    settings = Settings(
        prefix=args.prefix,
        read_only=args.read_only,
        password=password,
        host=args.host,
        allowed_hosts=tuple(args.allowed_host),
        refresh_s=args.refresh,
    )
    netloc = f"[{args.host}]" if ":" in args.host else args.host
    mode = " (read-only)" if args.read_only else ""
    log.info("orizuru dashboard on http://%s:%d/%s", netloc, args.port, mode)
    uvicorn.run(
        create_app(r, settings), host=args.host, port=args.port, access_log=False, log_level="info"
    )
    return 0
