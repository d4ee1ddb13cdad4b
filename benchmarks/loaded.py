"""The rows where users live: handlers that wait 10 ms (on the network, say) at 8, 32, 64
and 128 threads and at 100, 500 and 1,000 asyncio tasks; handlers of 1 to 50 ms mixed;
each row beside the peers at the same concurrency, running the same job.

Each row's limit is what its concurrency allows (``Limit.ideal``: concurrency / mean
handler seconds); the report weighs it against the worker's CPU and the server's, as
measured in the row, and says which binds. The groups, as ``run.py --only`` names them:

- ``io``: 10 ms sleeps, orizuru's threaded Worker beside dramatiq and huey, its asyncio
  Worker beside taskiq (stream broker), saq, arq and streaq.
- ``mixed``: 1 to 50 ms sleeps (``loads.MIXED``), 32 threads and 500 tasks, the same peers.
- ``cpu``: a handler that computes, over processes (``cpu_bound.py``).
"""

from __future__ import annotations

from functools import partial

import cpu_bound
import peers
import peers_async
from loads import MIXED, SLEEP_10MS, Load

from orizuru_py.ops import bench, bench_async
from orizuru_py.ops.benchdata import Case, Limit

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


def threaded(threads: int, load: Load, seconds: float, with_peers: bool) -> list[Case]:
    """orizuru's threaded Worker at ``threads`` threads, then dramatiq and huey."""
    limit = Limit(threads, load.mean_s, group=f"{load.name}_t{threads}")
    n = size(limit.ideal, seconds)
    measure = partial(bench.worker, concurrency=threads, work=load.run)
    label = f"orizuru Worker {threads} threads, {load.label}"
    ours = Case(f"worker_{load.name}_t{threads}", label, n, measure, limit=limit)
    return [ours, *(peers.loaded_cases(threads, load, n, limit) if with_peers else [])]


def tasks(count: int, load: Load, seconds: float, with_peers: bool) -> list[Case]:
    """orizuru's asyncio Worker at ``count`` tasks, then the asyncio peers."""
    limit = Limit(count, load.mean_s, group=f"{load.name}_a{count}")
    n = size(limit.ideal, seconds)
    measure = partial(bench_async.worker, concurrency=count, work=load.arun)
    label = f"orizuru asyncio Worker {count} tasks, {load.label}"
    ours = Case(f"async_worker_{load.name}_a{count}", label, n, measure, limit=limit)
    return [ours, *(peers_async.loaded_cases(count, load, n, limit) if with_peers else [])]


def cases(groups: set[str], seconds: float, with_peers: bool, with_async_peers: bool) -> list[Case]:
    """The rows of ``groups`` (any of ``GROUPS``), each lasting about ``seconds``."""
    out: list[Case] = []
    plan = (("io", SLEEP_10MS, THREADS, TASKS), ("mixed", MIXED, MIXED_THREADS, MIXED_TASKS))
    for group, load, thread_counts, task_counts in plan:
        if group not in groups:
            continue
        for threads in thread_counts:
            out += threaded(threads, load, seconds, with_peers)
        for count in task_counts:
            out += tasks(count, load, seconds, with_async_peers)
    if "cpu" in groups:
        out += cpu_bound.cases(seconds)
    return out
