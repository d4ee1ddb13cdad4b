"""The ``orizuru dashboard`` command in a child process, parsed as the CLI parses it.

Usage: python -m tests.dashboard.serve_child REDIS_URL --prefix P [dashboard options]
(cli.py adds the global ``--prefix``; here the child adds it beside the command's own.)
"""

from __future__ import annotations

import argparse
import sys

import redis

from orizuru_py.ops.dashboard import command


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="orizuru dashboard")
    p.add_argument("--prefix", default="orizuru")
    command.add_arguments(p)
    return command.run(redis.Redis.from_url(argv[0]), p.parse_args(argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
