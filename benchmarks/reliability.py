"""Reliability figures: the fault scenarios of ``tests/faults``, at a larger size.

    python benchmarks/reliability.py [--scale 1.0] [--only soak,memory] [--out figures.jsonl]

Prints one JSON line of figures per scenario run (what each figure means:
``tests/faults/accounting.py``) and exits 1 if any run lost a message, left one
behind or had a consumer crash. Without ``--redis-url`` (or ``REDIS_URL``) it
starts an embedded server; ``server_restart`` and ``soak`` always run their own.
At ``--scale 1``: SIGKILL chaos 20k messages and 20 kills (consumers, then workers,
then asyncio workers), server restart 20k, connection cuts 10k (both client styles),
garbage 20k, memory 200k, soak 100k with 100 kills, 5 zombies and 2 server restarts; failover
(a primary, a replica and three sentinels; the primary SIGKILLed) 5k single pushes and
60k pushed in batches of 100 while the replica lags, each with ``replicas=1`` and without.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TextIO

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the scenarios live in tests/

from orizuru_py.ops.embedded import EmbeddedServer
from tests import failover
from tests.faults import garbage, memory, scenarios
from tests.faults.accounting import Figures


@attrs.frozen
class Run:
    """What every scenario runner gets."""

    url: str
    workdir: Path
    scale: float
    seed: int

    def size(self, full: int, least: int) -> int:
        return max(least, round(full * self.scale))

    def dir(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def sigkill_chaos(run: Run) -> Iterator[Figures]:
    messages, kills, consumers = run.size(20_000, 500), run.size(20, 8), 3
    # Enough work per message that the messages outlast the kills (a mean gap of 0.3 s).
    work_ms = round(1000 * 2 * kills * 0.3 * consumers / messages, 2)
    for mode in ("consumer", "worker", "async-worker"):
        yield scenarios.sigkill_chaos(
            run.url,
            run.dir(f"chaos-{mode}"),
            messages=messages,
            kills=kills,
            consumers=consumers,
            mode=mode,
            work_ms=work_ms,
            seed=run.seed,
        )


def server_restart(run: Run) -> Iterator[Figures]:
    yield scenarios.server_restart(run.dir("restart"), messages=run.size(20_000, 500))


def connection_cuts(run: Run) -> Iterator[Figures]:
    for client in ("url", "kwargs"):
        yield scenarios.connection_cuts(
            run.url,
            run.dir(f"cuts-{client}"),
            messages=run.size(10_000, 500),
            client=client,
            seed=run.seed,
        )


def garbage_between_messages(run: Run) -> Iterator[Figures]:
    items = garbage.random_items(random.Random(run.seed), run.size(20_000, 100))
    yield garbage.garbage(run.url, items, batch=10)


def slow_handler(run: Run) -> Iterator[Figures]:
    yield scenarios.slow_handler(run.url, run.dir("slow"), messages=run.size(8, 4), consumers=2)


def zombie(run: Run) -> Iterator[Figures]:
    yield scenarios.zombie(run.url, run.dir("zombie"), messages=run.size(200, 40), work_ms=50)


def memory_flat(run: Run) -> Iterator[Figures]:
    yield memory.memory(run.url, messages=run.size(200_000, 5_000), warmup=1000)


def soak(run: Run) -> Iterator[Figures]:
    yield scenarios.soak(run.dir("soak"), scale=run.scale, seed=run.seed)


def failover_(run: Run) -> Iterator[Figures]:
    """The primary SIGKILLed under a steady trickle of single pushes, then under a flood
    of 1 KB batches while its replica lags; each with producer confirms and without."""
    for lagging, batch, pad, messages in ((0.0, 1, 0, 5_000), (1.0, 100, 1000, 60_000)):
        for replicas in (1, 0):
            yield failover.failover(
                run.url,
                run.dir("failover"),
                messages=run.size(messages, 300 * batch),
                replicas=replicas,
                lagging=lagging,
                batch=batch,
                pad=pad,
            )


SCENARIOS: dict[str, Callable[[Run], Iterator[Figures]]] = {
    "sigkill_chaos": sigkill_chaos,
    "server_restart": server_restart,
    "connection_cuts": connection_cuts,
    "garbage": garbage_between_messages,
    "slow_handler": slow_handler,
    "zombie": zombie,
    "memory": memory_flat,
    "soak": soak,
    "failover": failover_,
}


def healthy(figures: Figures) -> bool:
    """Nothing lost, left or crashed; except that a failover without producer confirms
    may lose acknowledged pushes: that count is what the scenario measures."""
    if figures.get("scenario") == "failover":
        unconfirmed_loss = figures["replicas"] == 0
        return (
            (unconfirmed_loss or not figures["lost"])
            and not figures["stranded"]
            and figures["workers_alive"] == 2
        )
    return not figures.get("lost") and not figures.get("left") and not figures.get("crashes")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL"),
        help="server for the scenarios that share one (default: embedded)",
    )
    p.add_argument("--scale", type=float, default=1.0, help="multiply every size (default 1)")
    p.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios, of: {', '.join(SCENARIOS)}",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    p.add_argument("--out", type=Path, default=None, help="also append the JSON lines here")
    args = p.parse_args(argv)
    unknown = set(args.only.split(",")) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if not args.scale > 0:
        p.error("--scale must be positive")
    return args


def emit(figures: Figures, outputs: list[TextIO]) -> None:
    logs = figures.pop("crash_logs", [])
    line = json.dumps(figures, sort_keys=False)
    for out in outputs:
        print(line, file=out, flush=True)
    for log in logs:
        print(f"crashed consumer of {figures.get('scenario')}: {log}", file=sys.stderr)


def main(argv: list[str]) -> int:
    args = parse(argv)
    # The consumers log every dead-lettered or retried message; the figures say it all.
    logging.getLogger("orizuru_py").setLevel(logging.CRITICAL)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    ok = True
    with ExitStack() as stack:
        url = args.redis_url or stack.enter_context(EmbeddedServer()).url
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="reliability-")))
        outputs = [sys.stdout]
        if args.out:
            outputs.append(stack.enter_context(args.out.open("a")))
        run = Run(url, workdir, args.scale, seed)
        for name in args.only.split(","):
            for figures in SCENARIOS[name](run):
                ok &= healthy(figures)
                figures.setdefault("seed", seed)
                emit(figures, outputs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
