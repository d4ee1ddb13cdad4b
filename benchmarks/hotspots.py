"""Where orizuru_py's time goes, per message: cProfile (or pyinstrument) over one path.

    python benchmarks/hotspots.py [--redis-url URL] [--messages N] [--top K] [PATH ...]

PATH is any of push, push_many, next_ack, batch (default: all). For each it times
the path once unprofiled, then prints the top functions by own time in
microseconds per message. cProfile inflates Python-heavy code more than time
spent waiting on Redis: read the shares, not the absolute figures.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import time
from collections.abc import Callable

from orizuru_py.consumer import Consumer
from orizuru_py.ops import bench
from orizuru_py.ops.bench import BATCH, message
from orizuru_py.ops.benchdata import Bench
from orizuru_py.producer import Producer

Run = Callable[[], object]


def _pushes(b: Bench, n: int, batched: bool) -> tuple[Run, Callable[[], None]]:
    queue = b.queue("hot-push")
    producer = Producer(b.r, queue, prefix=b.prefix)
    if batched:
        batches = [[message(i) for i in range(lo, lo + BATCH)] for lo in range(0, n, BATCH)]
        return (lambda: [producer.push_many(x) for x in batches]), lambda: b.drop(queue)
    payloads = [message(i) for i in range(n)]
    return (lambda: [producer.push(p) for p in payloads]), lambda: b.drop(queue)


def _takes(b: Bench, n: int, batched: bool) -> tuple[Run, Callable[[], None]]:
    queue = b.queue("hot-take")
    bench.fill(b, queue, n)
    consumer = Consumer(b.r, queue, prefix=b.prefix)
    take = bench.take_batches if batched else bench.take_single

    def done() -> None:
        consumer.close()
        b.drop(queue)

    return (lambda: take(consumer, n)), done


PATHS: dict[str, Callable[[Bench, int], tuple[Run, Callable[[], None]]]] = {
    "push": lambda b, n: _pushes(b, n, False),
    "push_many": lambda b, n: _pushes(b, n, True),
    "next_ack": lambda b, n: _takes(b, n, False),
    "batch": lambda b, n: _takes(b, n, True),
}


def timed(b: Bench, path: str, n: int) -> float:
    """Microseconds per message, unprofiled."""
    run, done = PATHS[path](b, n)
    t0 = time.perf_counter()
    run()
    seconds = time.perf_counter() - t0
    done()
    return seconds / n * 1e6


def profiled(b: Bench, path: str, n: int, top: int) -> str:
    """The top ``top`` functions of ``path`` by own time, per message."""
    run, done = PATHS[path](b, n)
    profiler = cProfile.Profile()
    profiler.runcall(run)
    done()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    lines = [
        f"  profiled total {total / n * 1e6:.1f} us/msg",
        f"  {'own us/msg':>10} {'share':>6} {'cum us/msg':>10} {'calls/msg':>9}  function",
    ]
    entries = stats.stats.items()  # type: ignore[attr-defined]
    ranked = sorted(entries, key=lambda e: e[1][2], reverse=True)[:top]
    for (file, line, func), (_cc, calls, own, cum, _callers) in ranked:
        where = f"{os.path.basename(file)}:{line}({func})" if line else func
        lines.append(
            f"  {own / n * 1e6:>10.2f} {own / total:>6.1%} {cum / n * 1e6:>10.2f} "
            f"{calls / n:>9.2f}  {where}"
        )
    return "\n".join(lines)


def instrumented(b: Bench, path: str, n: int) -> str:
    """pyinstrument's call tree of ``path`` (statistical, so less inflated than cProfile)."""
    from pyinstrument import Profiler

    run, done = PATHS[path](b, n)
    profiler = Profiler(interval=0.0002)
    profiler.start()
    run()
    profiler.stop()
    done()
    out = io.StringIO()
    out.write(profiler.output_text(unicode=False, color=False, show_all=False))
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Per-message hot spots of orizuru_py's paths.")
    p.add_argument("paths", nargs="*", metavar="PATH", help=f"any of {', '.join(PATHS)}")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--pyinstrument", action="store_true", help="pyinstrument instead of cProfile")
    args = p.parse_args(argv)
    unknown = set(args.paths) - set(PATHS)
    if unknown:
        p.error(f"unknown path(s) {', '.join(sorted(unknown))}; choose from {', '.join(PATHS)}")
    with bench.server(args.redis_url) as url:
        b = Bench(url)
        try:
            for path in args.paths or PATHS:
                n = args.messages * (10 if path in ("push_many", "batch") else 1)
                print(f"{path}: {n:,} messages, {timed(b, path, n):.1f} us/msg unprofiled")
                if args.pyinstrument:
                    print(instrumented(b, path, n))
                else:
                    print(profiled(b, path, n, args.top))
                print()
        finally:
            b.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
