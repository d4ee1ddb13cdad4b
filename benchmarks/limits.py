"""What a rate limit and a time limit cost per message: the Worker with each, against the
same Worker without, in interleaved rounds on one server.

    python benchmarks/limits.py [--redis-url URL] [--rounds R] [--seconds S] [--json out.json]

The rate limit is far above the rate (10,000 starts per 10 ms): it never throttles,
so what a row pays is the check itself (one sorted-set entry per start, in the start's
step) and what it rules out (no batch taken straight into the processing list: every
start passes the limiter). The time limit is 60 s: it never fires, so a row pays the
watchdog's bookkeeping per handler call (threads) or a timer (asyncio). Rows: 10 ms
handlers at 32 and 64 threads and at 500 asyncio tasks (where users live), and no-op
handlers at 8 threads (the most a per-message cost can weigh). Each limited row's
"vs ceiling" is its rate over its unlimited row's (the target: at least 0.9).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from loads import NOOP, SLEEP_10MS, Load

from orizuru_py.limits import RateLimit
from orizuru_py.ops import bench, bench_async
from orizuru_py.ops.benchdata import Bench, Case, Result

FAR_ABOVE = RateLimit(10_000, per=0.01)  # a million starts a second
NEVER = 60.0
ROWS = (  # name, label, threads (or tasks, on asyncio), load, asyncio
    ("io_t32", "Worker 32 threads, 10 ms sleep", 32, SLEEP_10MS, False),
    ("io_t64", "Worker 64 threads, 10 ms sleep", 64, SLEEP_10MS, False),
    ("io_a500", "asyncio Worker 500 tasks, 10 ms sleep", 500, SLEEP_10MS, True),
    ("noop_t8", "Worker 8 threads, no-op", 8, NOOP, False),
)
NOOP_RATE = 20_000  # messages a second the no-op row is sized for


def cases(seconds: float) -> list[Case]:
    """Per row: the Worker unlimited, with the rate limit, with the time limit."""
    out = []
    modes = {"rate limit": {"rate_limit": FAR_ABOVE}, "time limit": {"time_limit": NEVER}}
    for name, label, concurrency, load, on_asyncio in ROWS:
        rate = concurrency / load.mean_s if load.mean_s else NOOP_RATE
        n = max(200, round(rate * seconds))
        out.append(Case(name, label, n, _measure(concurrency, load, on_asyncio, {})))
        for mode, options in modes.items():
            measure = _measure(concurrency, load, on_asyncio, options)
            out.append(Case(f"{name} {mode}", f"  {mode}", n, measure, name))
    return out


def _measure(
    concurrency: int, load: Load, on_asyncio: bool, options: dict[str, Any]
) -> Callable[[Bench, int], Result]:
    """The Worker at ``concurrency`` running ``load`` with ``options``."""
    if on_asyncio:
        work = load.arun if load.mean_s else None
        return partial(bench_async.worker, concurrency=concurrency, work=work, **options)
    work_ = load.run if load.mean_s else None
    return partial(bench.worker, concurrency=concurrency, work=work_, **options)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="The cost of a rate limit and a time limit.")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    p.add_argument("--seconds", type=float, default=2.0, help="a row's length, about")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    note = "vs ceiling: a limited row's rate over its unlimited row's."
    return bench.measure(
        args.redis_url, "limits' cost", cases(args.seconds), args.rounds, note, args.json
    )


if __name__ == "__main__":
    sys.exit(main())
