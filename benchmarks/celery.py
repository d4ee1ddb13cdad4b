"""Celery through orizuru:// against Celery through kombu's Redis transport: tasks/s of
one worker on a backlog of no-op tasks, the same worker settings on both (the README's:
late acks, reject on worker lost; prefork, 2 processes, the default prefetch). Prints a
line per run and the ratio of the medians. A measurement to run by hand, not a test:

    .venv/bin/python benchmarks/celery.py --redis-url redis://127.0.0.1:6379/13 --rounds 3

Without ``--redis-url`` it starts an embedded Valkey. Filling the queue is not timed;
the worker is timed from its ``worker_ready`` signal until every task has run (each
INCRs a counter), so the start of the interpreter is left out.
"""

from __future__ import annotations

import os
import sys

# This file is named after the package it measures: its own directory must not shadow it.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from contextlib import ExitStack  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlparse  # noqa: E402

import redis  # noqa: E402
from celery import Celery, signals  # noqa: E402

import orizuru_py.kombu  # noqa: E402, F401  (registers orizuru://)
from orizuru_py import Queue  # noqa: E402

TIMEOUT = 300.0


def make_app(broker: str, queue: str, counter_url: str) -> Celery:
    app = Celery("bench", broker=broker)
    app.conf.update(task_acks_late=True, task_reject_on_worker_lost=True,
                    task_default_queue=queue, worker_hijack_root_logger=False)  # fmt: skip
    client: list[redis.Redis] = []

    @app.task(name="noop")
    def noop(key: str) -> None:
        if not client:  # one client per pool process, made after the fork
            client.append(redis.Redis.from_url(counter_url))
        client[0].incr(key)

    return app


def worker(broker: str, queue: str, counter_url: str, pool: str, concurrency: str) -> None:
    """The worker process: mark the moment it is ready, then work until killed."""
    app = make_app(broker, queue, counter_url)

    @signals.worker_ready.connect
    def ready(**_: Any) -> None:
        redis.Redis.from_url(counter_url).set(f"{queue}:ready", time.time())

    app.worker_main(["worker", "-P", pool, "-c", concurrency, "-Q", queue, "-l", "WARNING",
                     "--without-mingle", "--without-gossip", "--without-heartbeat"])  # fmt: skip


def measure(url: str, broker: str, tasks: int, pool: str, concurrency: int) -> float:
    """Tasks/s of one worker on a backlog of ``tasks``."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    r = redis.Redis.from_url(url)
    app = make_app(broker, queue, url)
    with app.producer_or_acquire() as producer:
        for _ in range(tasks):
            app.send_task("noop", args=[f"{queue}:done"], queue=queue, producer=producer)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", broker, queue, url, pool,
           str(concurrency)]  # fmt: skip
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT
        while int(r.get(f"{queue}:done") or 0) < tasks:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"{broker}: the worker did not run {tasks} tasks")
            time.sleep(0.01)
        seconds = time.time() - float(r.get(f"{queue}:ready") or 0)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    r.delete(queue, f"{queue}:ready", f"{queue}:done")
    if broker.startswith("orizuru"):
        Queue(r, queue).purge(dead=True)
    app.close()
    return tasks / seconds


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        return worker(*sys.argv[2:7])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="a server to use (default: an embedded Valkey)")
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--pool", default="prefork")
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    with ExitStack() as stack:
        url = args.redis_url
        if url is None:
            from orizuru_py.ops.embedded import EmbeddedServer

            url = stack.enter_context(EmbeddedServer()).url
        ours = urlparse(url)._replace(scheme="orizuru").geturl()
        rates: dict[str, list[float]] = {ours: [], url: []}
        for n in range(args.rounds):
            for broker in rates:
                rate = measure(url, broker, args.tasks, args.pool, args.concurrency)
                rates[broker].append(rate)
                print(f"round {n + 1}  {urlparse(broker).scheme:8} {rate:9,.0f} tasks/s")
        mine, theirs = (statistics.median(v) for v in rates.values())
        print(f"orizuru:// {mine:,.0f} tasks/s, kombu redis:// {theirs:,.0f} tasks/s: "
              f"ratio {mine / theirs:.2f} ({args.tasks} no-op tasks, {args.pool} "
              f"x{args.concurrency}, median of {args.rounds})")  # fmt: skip


if __name__ == "__main__":
    main()
