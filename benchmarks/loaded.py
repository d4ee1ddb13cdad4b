"""The rows where users live: handlers that wait 10 ms (on the network, say) at 8, 32, 64
and 128 threads and at 100, 500 and 1,000 asyncio tasks; handlers of 1 to 50 ms mixed;
each row beside the peers at the same concurrency, running the same job.

Each row's limit is what its concurrency allows: concurrency / mean handler seconds,
nominal (``Limit.ideal``) and as measured in the same run by a bare pool of as many
threads or tasks running the same handlers with no queue at all (a 10 ms
``asyncio.sleep`` takes longer than 10 ms, more so among 100 others); the report weighs
that against the worker's CPU and the server's, as measured in the row, and says which
binds. The groups, as ``run.py --only`` names them:

- ``io``: 10 ms sleeps, orizuru's threaded Worker beside dramatiq and huey, its asyncio
  Worker beside taskiq (stream broker), saq, arq and streaq.
- ``mixed``: 1 to 50 ms sleeps (``loads.MIXED``), 32 threads and 500 tasks, the same peers.
- ``cpu``: a handler that computes, over processes (``cpu_bound.py``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from functools import partial

import attrs
import cpu_bound
import peers
import peers_async
from loads import MIXED, SLEEP_10MS, Load

from orizuru_py.ops import bench, bench_async
from orizuru_py.ops.bench import message
from orizuru_py.ops.benchdata import Bench, Case, Limit, Result, Timer

THREADS = (8, 32, 64, 128)
TASKS = (100, 500, 1_000)
MIXED_THREADS = (32,)
MIXED_TASKS = (500,)
# A row is sized for the rate its concurrency allows, but for at most this rate (on 2
# cores no queue here comes near 100,000 jobs/s): it then lasts about the seconds asked.
RATE_CAP = 6_000
GROUPS = ("io", "mixed", "cpu")


def size(ideal: float, seconds: float) -> int:
    """Jobs for a row that would last ``seconds`` at its ideal rate (capped)."""
    return max(50, round(min(ideal, RATE_CAP) * seconds))


def bare_threads(b: Bench, n: int, count: int, load: Load) -> Result:
    """``n`` jobs of ``load`` on ``count`` threads, taken from a counter: no queue."""
    jobs, lock = iter(range(n)), threading.Lock()

    def run() -> None:
        while True:
            with lock:
                i = next(jobs, None)
            if i is None:
                return
            load.run(message(i))

    pool = [threading.Thread(target=run, daemon=True) for _ in range(count)]
    with Timer(b.r) as t:
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    return t.result(n)


def bare_tasks(b: Bench, n: int, count: int, load: Load) -> Result:
    """``n`` jobs of ``load`` on ``count`` asyncio tasks of one loop: no queue."""

    async def go() -> None:
        jobs = iter(range(n))

        async def run() -> None:
            for i in jobs:
                await load.arun(message(i))

        await asyncio.gather(*(run() for _ in range(count)))

    with Timer(b.r) as t:
        asyncio.run(go())
    return t.result(n)


@attrs.frozen
class Kind:
    """How a row runs its handlers: on threads or on asyncio tasks, with the Worker, the
    peers (``peers.py`` or ``peers_async.py``) and the bare pool that run them that way."""

    tag: str  # in case names: "t" threads, "a" tasks
    unit: str
    worker: str  # label and case name of orizuru's Worker
    case: str
    measure: Callable[..., Result]
    bare_label: str
    bare: Callable[..., Result]
    peers: Callable[[int, Load, int, Limit], list[Case]]
    asyncio: bool


ON_THREADS = Kind("t", "threads", "orizuru Worker", "worker", bench.worker, "bare pool",
                bare_threads, peers.loaded_cases, asyncio=False)  # fmt: skip
ON_TASKS = Kind("a", "tasks", "orizuru asyncio Worker", "async_worker", bench_async.worker,
             "bare asyncio", bare_tasks, peers_async.loaded_cases, asyncio=True)  # fmt: skip


def rows(kind: Kind, count: int, load: Load, seconds: float, with_peers: bool) -> list[Case]:
    """orizuru's Worker at ``count`` threads or tasks, the peers that run ``kind``'s way,
    then the bare pool that measures the row's handler limit."""
    name = f"{load.name}_{kind.tag}{count}"
    limit = Limit(count, load.mean_s, group=name, measured=f"bare_{name}")
    n = size(limit.ideal, seconds)
    work = load.arun if kind.asyncio else load.run
    measure = partial(kind.measure, concurrency=count, work=work)
    label = f"{kind.worker} {count} {kind.unit}, {load.label}"
    bare = partial(kind.bare, count=count, load=load)
    bare_label = f"{kind.bare_label} {count} {kind.unit}, {load.label}"
    return [
        Case(f"{kind.case}_{name}", label, n, measure, limit=limit),
        *(kind.peers(count, load, n, limit) if with_peers else []),
        Case(limit.measured, bare_label, n, bare, limit=limit, note="no queue: the handler limit"),
    ]


def cases(groups: set[str], seconds: float, with_peers: bool, with_async_peers: bool) -> list[Case]:
    """The rows of ``groups`` (any of ``GROUPS``), each lasting about ``seconds``."""
    out: list[Case] = []
    plan = (("io", SLEEP_10MS, THREADS, TASKS), ("mixed", MIXED, MIXED_THREADS, MIXED_TASKS))
    for group, load, thread_counts, task_counts in plan:
        if group not in groups:
            continue
        for threads in thread_counts:
            out += rows(ON_THREADS, threads, load, seconds, with_peers)
        for count in task_counts:
            out += rows(ON_TASKS, count, load, seconds, with_async_peers)
    if "cpu" in groups:
        out += cpu_bound.cases(seconds)
    return out
