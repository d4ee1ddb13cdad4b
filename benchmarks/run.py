"""The one benchmark command: raw redis-py ceilings, orizuru_py's paths, its Worker and
the peer queues (threaded, then asyncio), on one server in one run, as tables, PASS/MISS
per target, and JSON.

    python benchmarks/run.py [--smoke] [--redis-url URL] [--json out.json]

With no ``--redis-url`` (or ``REDIS_URL``) a private embedded Valkey is started.
Rounds are interleaved (every case once per round) and medians reported. Then the
cost per message with 10, 10^4 and 10^6 messages waiting, and the RSS of a fresh
consumer process over 10^6 messages. The asyncio group (its own table, its rows compared
with each other) runs in the same interleaved rounds. ``--smoke``: a few hundred messages,
ceilings and orizuru paths only, one round, so a test can keep the benchmark working.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import backlog
import ceilings
import ceilings_async
import peers
import peers_async
from backlog import DEPTHS, depth_name

from orizuru_py.ops import bench, bench_async, benchreport
from orizuru_py.ops.bench import Case, Row

PEERS = ("rq", "dramatiq", "huey")
ASYNC_PEERS = ("arq", "saq", "taskiq", "streaq")
VERSIONS = (*PEERS, *ASYNC_PEERS, "taskiq-redis", "coredis")  # recorded in the JSON
DEFAULT_JSON = Path(__file__).parent / "results" / "latest.json"


@attrs.frozen
class Target:
    """median(case) against median(reference): a rate ratio that must reach ``threshold``,
    or (``cost``) a cost-per-message ratio that must stay within it. Several references:
    against the fastest of those measured."""

    label: str
    case: str
    reference: str | tuple[str, ...]
    threshold: float
    cost: bool = False

    def check(self, rows: dict[str, Row]) -> tuple[float | None, str]:
        reference = self.reference
        if isinstance(reference, tuple):
            rated = [(rows[n].median, n) for n in reference if n in rows and rows[n].median]
            if not rated:
                return None, "n/a"
            reference = max(rated)[1]
        value = benchreport.ratio(
            rows,
            reference if self.cost else self.case,
            self.case if self.cost else reference,
        )
        if value is None:
            return None, "n/a"
        ok = value <= self.threshold if self.cost else value >= self.threshold
        return value, "PASS" if ok else "MISS"


TARGETS = (
    Target("Worker no-op >= 20x huey", "worker", "huey", 20.0),
    Target("Worker no-op >= 30x dramatiq", "worker", "dramatiq", 30.0),
    Target("next_batch+ack_many >= 0.9x batched Lua ceiling", "batch", "raw_lua_batch", 0.9),
    Target("push >= 0.9x raw LPUSH", "push", "raw_lpush", 0.9),
    Target("next+ack >= 0.9x raw BLMOVE+LREM", "next_ack", "raw_blmove_lrem", 0.9),
    Target("Worker with a no-op Observer >= 0.97x without", "worker_observer", "worker", 0.97),
    Target("Worker on 3 queues >= 0.9x on 1", "worker_3q", "worker", 0.9),
    Target("push with a unique_key >= 0.9x without", "push_unique", "push", 0.9),
    Target(
        "asyncio Worker >= 20x the fastest asyncio peer",
        "async_worker",
        ("arq", "saq", "taskiq", "streaq"),
        20.0,
    ),
    Target(
        "asyncio batch >= 0.8x raw redis.asyncio ceiling",
        "async_batch",
        "raw_async_lua_batch",
        0.8,
    ),
    *(
        Target(
            f"{'batch' if batched else 'next+ack'}: cost/msg at 10^6 queued <= 1.1x at 10",
            depth_name(batched, DEPTHS[-1]),
            depth_name(batched, DEPTHS[0]),
            1.1,
            cost=True,
        )
        for batched in (False, True)
    ),
)


@attrs.frozen
class Sizes:
    """Messages per measurement (rq and arq are about ten times slower than the others);
    0 leaves a measurement out."""

    single: int
    batched: int
    worker: int
    rq: int = 0
    dramatiq: int = 0
    huey: int = 0
    arq: int = 0
    saq: int = 0
    taskiq: int = 0
    streaq: int = 0
    depth_single: int = 0
    depth_batched: int = 0
    memory: int = 0

    def scaled(self, k: float) -> Sizes:
        return Sizes(*(max(1, round(v * k)) if v else 0 for v in attrs.astuple(self)))


FULL = Sizes(
    5_000,
    100_000,
    50_000,
    rq=1_000,
    dramatiq=5_000,
    huey=5_000,
    arq=2_000,
    saq=5_000,
    taskiq=10_000,
    streaq=5_000,
    depth_single=3_000,
    depth_batched=30_000,
    memory=1_000_000,
)
SMOKE = Sizes(300, 1_000, 300)
SLICES = 25  # parts per round of each path and its ceiling (smoke: 2)


def main_cases(s: Sizes, slices: int, with_peers: bool) -> list[Case]:
    """Each orizuru path right after its ceiling, so every ratio compares two runs close in
    time (the load on a shared machine drifts); the Worker just before the peers."""
    raw = {c.name: c for c in ceilings.cases(s.single, s.batched, slices)}
    cases: list[Case] = []
    for case in bench.orizuru_cases(s.single, s.batched, s.worker, slices):
        if case.ceiling in raw:
            cases.append(raw.pop(case.ceiling))
        cases.append(case)
    cases += raw.values()
    if with_peers:
        cases += peers.cases(s.rq, s.dramatiq, s.huey)
    return cases


def async_cases(s: Sizes, slices: int, with_peers: bool) -> list[Case]:
    """The asyncio group, run in the same rounds but reported in a table of its own, each
    row compared with the asyncio peers: each orizuru asyncio path right after its raw
    redis.asyncio ceiling, the Worker just before the peers."""
    raw = {c.name: c for c in ceilings_async.cases(s.single, s.batched, slices)}
    cases: list[Case] = []
    for case in bench_async.cases(s.single, s.batched, s.worker, slices)[1:]:
        if case.ceiling in raw:
            cases.append(raw.pop(case.ceiling))
        cases.append(case)
    cases += [*raw.values(), *bench_async.cases(0, 0, s.worker)[:1]]
    if with_peers:
        cases += peers_async.cases(s.arq, s.saq, s.taskiq, s.streaq)
    return cases


def report(
    rows: dict[str, Row],
    aio: dict[str, Row],
    depth: dict[str, Row],
    mem: dict[str, Any] | None,
) -> str:
    peers_here = [p for p in PEERS if p in rows]
    lines = [benchreport.format_table(rows, peers_here), benchreport.TABLE_NOTE]
    if aio:
        compare = [p for p in ASYNC_PEERS if p in aio]
        lines += ["", "asyncio (x: against each asyncio peer):"]
        lines.append(benchreport.format_table(aio, compare))
    if depth:
        lines += ["", "Cost per message by backlog:", benchreport.format_table(depth)]
    if mem:
        mib = 1024
        lines += [
            "",
            f"Consumer memory over {mem['messages']:,} messages (batch path, fresh process): "
            f"RSS {mem['rss_start_kib'] / mib:.1f} MiB at start, "
            f"peak {mem['rss_peak_kib'] / mib:.1f} MiB, "
            f"end {mem['rss_end_kib'] / mib:.1f} MiB "
            f"(growth {mem['rss_growth_kib'] / mib:+.1f} MiB; "
            f"{mem['messages'] / mem['seconds']:,.0f} msg/s)",
        ]
    lines += ["", "Targets (medians of interleaved rounds):"]
    every = {**rows, **aio, **depth}
    for t in TARGETS:
        value, status = t.check(every)
        shown = "-" if value is None else f"{value:.2f}x"
        lines.append(f"  {status:<4}  {t.label:<52} {shown}")
    return "\n".join(lines)


def targets_json(rows: dict[str, Row]) -> list[dict[str, Any]]:
    out = []
    for t in TARGETS:
        value, status = t.check(rows)
        out.append({**attrs.asdict(t), "value": value, "status": status})
    return out


def _commit() -> str | None:
    """The code measured: ``git describe --always --dirty`` of this checkout, if any."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def _versions(names: tuple[str, ...]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--smoke", action="store_true", help="a few hundred messages, a few seconds")
    p.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL"),
        help="server to measure (default: $REDIS_URL, else a private embedded Valkey)",
    )
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"default: {DEFAULT_JSON}")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 3; smoke 1)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every message count")
    p.add_argument("--no-peers", action="store_true", help="leave out rq, dramatiq and huey")
    p.add_argument(
        "--no-async-peers", action="store_true", help="leave out arq, saq, taskiq and streaq"
    )
    p.add_argument("--no-depth", action="store_true", help="leave out the backlog and memory runs")
    args = p.parse_args(argv)
    if (args.rounds is not None and args.rounds < 1) or not args.scale > 0:
        p.error("--rounds and --scale must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    sizes = (SMOKE if args.smoke else FULL).scaled(args.scale)
    rounds = args.rounds or (1 if args.smoke else 3)
    deep = not (args.smoke or args.no_depth)
    with bench.server(args.redis_url) as url:
        b = bench.Bench(url)
        depth: dict[str, Row] = {}
        mem = None
        try:
            env = {**benchreport.environment(b), "commit": _commit(), "peers": _versions(VERSIONS)}
            print(
                f"benchmark on {env['server']} at {env['host']}, {rounds} round(s), "
                f"load {env['loadavg']}",
                flush=True,
            )
            slices = 2 if args.smoke else SLICES
            cases = main_cases(sizes, slices, not (args.smoke or args.no_peers))
            aio_cases = async_cases(sizes, slices, not (args.smoke or args.no_async_peers))
            rows = bench.run_rounds(b, cases + aio_cases, rounds)
            aio = {c.name: rows.pop(c.name) for c in aio_cases}
            if deep:
                print("backlog:", flush=True)
                depth = backlog.depth_rows(b, sizes.depth_single, sizes.depth_batched, rounds)
                print(f"memory: a consumer process takes {sizes.memory:,} messages", flush=True)
                mem = backlog.memory(b, sizes.memory)
            env["loadavg_end"] = os.getloadavg()
        finally:
            b.cleanup()
    print()
    print(report(rows, aio, depth, mem))
    data = {
        "environment": env,
        "settings": {
            "smoke": args.smoke,
            "rounds": rounds,
            "slices": {c.name: c.slices for c in cases + aio_cases},
            "sizes": attrs.asdict(sizes),
        },
        "rows": benchreport.rows_json(rows, [p for p in PEERS if p in rows]),
        "asyncio_rows": benchreport.rows_json(aio, [p for p in ASYNC_PEERS if p in aio]),
        "depth": benchreport.rows_json(depth),
        "memory": mem,
        "targets": targets_json({**rows, **aio, **depth}),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
