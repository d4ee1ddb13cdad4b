"""The one benchmark command: raw redis-py ceilings, orizuru_py's paths, its Worker and
the peer queues (threaded, then asyncio), with no-op handlers and with handlers that wait
or compute as users' do, on one server in one run, as tables, PASS/MISS per target, and
JSON and text.

    python benchmarks/run.py [--smoke] [--only GROUP,...] [--redis-url URL] [--json out.json]

With no ``--redis-url`` (or ``REDIS_URL``) a private embedded Valkey is started.
Rounds are interleaved (every case once per round) and medians reported. Then the
cost per message with 10, 10^4 and 10^6 messages waiting, and the RSS of a fresh
consumer process over 10^6 messages. The asyncio group (its own table, its rows compared
with each other) and the loaded rows (``loaded.py``: a table of their own, each row's
efficiency against what binds it) run in the same interleaved rounds. ``--smoke``: a few
hundred messages, no peers, one round, so a test can keep the benchmark working.
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
import loaded
import peers
import peers_async
from targets import judged, targets_json

from orizuru_py.ops import bench, bench_async, benchreport
from orizuru_py.ops.benchdata import Bench, Case, Row

PEERS = ("rq", "dramatiq", "huey")
ASYNC_PEERS = ("arq", "saq", "taskiq", "streaq")
VERSIONS = (*PEERS, *ASYNC_PEERS, "taskiq-redis", "coredis")  # recorded in the JSON
DEFAULT_JSON = Path(__file__).parent / "results" / "latest.json"
# What --only selects from; every group by default.
GROUPS = (
    "ceilings",  # raw redis-py patterns
    "paths",  # orizuru's push, next+ack, push_many, batch, unique push
    "worker",  # its Worker with a no-op handler
    "peers",  # rq, dramatiq and huey with a no-op job
    "async",  # the asyncio ceilings, paths, Worker and peers, no-op
    *loaded.GROUPS,  # io, mixed, cpu: handlers that wait or compute, beside the peers
    "backlog",  # cost per message by queue depth
    "memory",  # server bytes per queued message; a consumer's RSS over 10^6 messages
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
    stored: int = 0

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
    stored=100_000,
)
SMOKE = Sizes(300, 1_000, 300)
SLICES = 25  # parts per round of each path and its ceiling (smoke: 2)
LOADED_SECONDS = 2.5  # each loaded row lasts about this at its ideal rate (smoke: 0.2)


def main_cases(s: Sizes, slices: int, groups: set[str], with_peers: bool) -> list[Case]:
    """Each orizuru path right after its ceiling, so every ratio compares two runs close in
    time (the load on a shared machine drifts); the Worker just before the peers."""
    raw = {c.name: c for c in ceilings.cases(s.single, s.batched, slices)}
    if "ceilings" not in groups:
        raw.clear()
    cases: list[Case] = []
    for case in bench.orizuru_cases(s.single, s.batched, s.worker, slices):
        if ("worker" if case.name.startswith("worker") else "paths") not in groups:
            continue
        if case.ceiling in raw:
            cases.append(raw.pop(case.ceiling))
        cases.append(case)
    cases += raw.values()
    if with_peers and "peers" in groups:
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
    live: dict[str, Row],
    depth: dict[str, Row],
    mem: dict[str, Any] | None,
    stored: dict[str, Any] | None = None,
) -> str:
    lines: list[str] = []
    if rows:
        lines += [benchreport.format_table(rows, [p for p in PEERS if p in rows])]
        lines += [benchreport.TABLE_NOTE, ""]
    if aio:
        compare = [p for p in ASYNC_PEERS if p in aio]
        lines += ["asyncio (x: against each asyncio peer):"]
        lines += [benchreport.format_table(aio, compare), ""]
    if live:
        lines += ["Handlers that wait or compute (medians; jobs/s and CPU per job):"]
        lines += [benchreport.format_limits(live), benchreport.LIMITS_NOTE, ""]
    if depth:
        lines += ["Cost per message by backlog:", benchreport.format_table(depth), ""]
    if stored:
        ratio = stored["ratio"]
        lines += [
            f"Server memory per queued message ({stored['payload_bytes']}-byte payload, "
            f"{stored['messages']:,} queued, MEMORY USAGE): raw list {stored['raw']:.1f} B, "
            f"orizuru {stored['queued']:.1f} B ({ratio:.2f}x), "
            f"with a unique key {stored['queued_unique']:.1f} B",
            "",
        ]
    if mem:
        mib = 1024
        lines += [
            f"Consumer memory over {mem['messages']:,} messages (batch path, fresh process): "
            f"RSS {mem['rss_start_kib'] / mib:.1f} MiB at start, "
            f"peak {mem['rss_peak_kib'] / mib:.1f} MiB, "
            f"end {mem['rss_end_kib'] / mib:.1f} MiB "
            f"(growth {mem['rss_growth_kib'] / mib:+.1f} MiB; "
            f"{mem['messages'] / mem['seconds']:,.0f} msg/s)",
            "",
        ]
    verdicts = judged({**rows, **aio, **depth}, stored)
    if any(value is not None for _, value, _ in verdicts):
        lines += ["Targets (medians of interleaved rounds; memory: one measurement):"]
        for t, value, status in verdicts:
            shown = "-" if value is None else f"{value:.2f}x"
            lines.append(f"  {status:<4}  {t.label:<52} {shown}")
    return "\n".join(lines).rstrip()


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


def groups_arg(text: str) -> set[str]:
    """``--only``: a comma-separated list of ``GROUPS``."""
    chosen = {g.strip() for g in text.split(",") if g.strip()}
    unknown = chosen - set(GROUPS)
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown group(s) {', '.join(sorted(unknown)) or '(none)'}; "
            f"choose from {', '.join(GROUPS)}"
        )
    return chosen


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--smoke", "--quick", action="store_true", help="a few seconds, no peers")
    p.add_argument(
        "--only",
        type=groups_arg,
        default=set(GROUPS),
        metavar="GROUP,...",
        help=f"run only these groups: {', '.join(GROUPS)} (default: all)",
    )
    p.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL"),
        help="server to measure (default: $REDIS_URL, else a private embedded Valkey)",
    )
    p.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        help=f"default: {DEFAULT_JSON}; the report goes beside it, as .txt",
    )
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 3; smoke 1)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every message count")
    p.add_argument(
        "--no-peers", action="store_true", help="leave out rq, dramatiq and huey (every row)"
    )
    p.add_argument(
        "--no-async-peers",
        action="store_true",
        help="leave out arq, saq, taskiq and streaq (every row)",
    )
    p.add_argument("--no-depth", action="store_true", help="leave out the backlog and memory runs")
    args = p.parse_args(argv)
    if (args.rounds is not None and args.rounds < 1) or not args.scale > 0:
        p.error("--rounds and --scale must be positive")
    return args


def plan(args: argparse.Namespace, sizes: Sizes) -> tuple[list[Case], list[Case], list[Case]]:
    """The cases of the selected groups: blocking, asyncio, and loaded."""
    slices = 2 if args.smoke else SLICES
    peers_too = not (args.smoke or args.no_peers)
    async_peers_too = not (args.smoke or args.no_async_peers)
    cases = main_cases(sizes, slices, args.only, peers_too)
    aio = async_cases(sizes, slices, async_peers_too) if "async" in args.only else []
    seconds = (0.2 if args.smoke else LOADED_SECONDS) * args.scale
    live = loaded.cases(args.only, seconds, peers_too, async_peers_too)
    return cases, aio, live


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    sizes = (SMOKE if args.smoke else FULL).scaled(args.scale)
    rounds = args.rounds or (1 if args.smoke else 3)
    deep = not (args.smoke or args.no_depth)
    cases, aio_cases, live_cases = plan(args, sizes)
    with bench.server(args.redis_url) as url:
        b = Bench(url)
        depth: dict[str, Row] = {}
        mem = stored = None
        try:
            env = {**benchreport.environment(b), "commit": _commit(), "peers": _versions(VERSIONS)}
            print(
                f"benchmark on {env['server']} at {env['host']}, {rounds} round(s), "
                f"load {env['loadavg']}",
                flush=True,
            )
            rows = bench.run_rounds(b, cases + aio_cases + live_cases, rounds)
            aio = {c.name: rows.pop(c.name) for c in aio_cases}
            live = {c.name: rows.pop(c.name) for c in live_cases}
            if deep and "backlog" in args.only:
                print("backlog:", flush=True)
                depth = backlog.depth_rows(b, sizes.depth_single, sizes.depth_batched, rounds)
            if deep and "memory" in args.only and sizes.stored:
                print(f"memory: {sizes.stored:,} messages queued", flush=True)
                stored = backlog.stored_bytes(b, sizes.stored)
            if deep and "memory" in args.only:
                print(f"memory: a consumer process takes {sizes.memory:,} messages", flush=True)
                mem = backlog.memory(b, sizes.memory)
            env["loadavg_end"] = os.getloadavg()
        finally:
            b.cleanup()
    text = report(rows, aio, live, depth, mem, stored)
    print()
    print(text)
    every = cases + aio_cases + live_cases
    data = {
        "environment": env,
        "settings": {
            "smoke": args.smoke,
            "only": sorted(args.only, key=GROUPS.index),
            "rounds": rounds,
            "slices": {c.name: c.slices for c in every},
            "sizes": attrs.asdict(sizes),
            "loaded_messages": {c.name: c.messages for c in live_cases},
        },
        "rows": benchreport.rows_json(rows, [p for p in PEERS if p in rows]),
        "asyncio_rows": benchreport.rows_json(aio, [p for p in ASYNC_PEERS if p in aio]),
        "loaded_rows": benchreport.rows_json(live),
        "depth": benchreport.rows_json(depth),
        "memory": mem,
        "stored": stored,
        "targets": targets_json({**rows, **aio, **depth}, stored),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2))
    header = f"{env['server']} at {env['host']}, commit {env['commit']}, {env['time']}, "
    header += f"load {_load(env['loadavg'])} at start, {_load(env['loadavg_end'])} at end\n\n"
    args.json.with_suffix(".txt").write_text(header + text + "\n")
    print(f"\nwrote {args.json} and {args.json.with_suffix('.txt').name}")
    return 0


def _load(loadavg: Any) -> str:
    return "/".join(f"{x:.2f}" for x in loadavg) if loadavg else "-"


if __name__ == "__main__":
    sys.exit(main())
