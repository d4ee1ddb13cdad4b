"""A handler that computes: ``orizuru worker loads:cpu_job QUEUE --processes N`` against
the same command with ``--processes 1``, each process running 2 threads.

The worker runs as a user starts it, in processes of its own. It is started on an empty
queue and timed from the moment every worker process has registered: the messages are
pushed (inside the timed window: one ``push_many`` per 10,000) and taken at once by the
processes blocked on the queue, until every one is acked. CPU per message is that of the
worker's whole process tree (supervisor and worker processes), read with psutil (not
measured where psutil is missing: ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from functools import partial

from loads import CPU_1MS

from orizuru_py import Queue, QueueStats
from orizuru_py.ops.bench import fill, wait_until
from orizuru_py.ops.benchdata import Bench, Case, Limit, Result, Timer

HERE = os.path.dirname(os.path.abspath(__file__))
THREADS = 2  # per process: one can wait on Redis while the other computes
_START = 60.0  # seconds the worker processes may take to start
_DONE = 300.0  # seconds the messages may take
_POLL = 0.02  # seconds between looks at the queue: its stats cost the server too


def processes() -> int:
    """The worker processes of the many-process row: one per core, at least 2."""
    return max(2, os.cpu_count() or 1)


def tree_cpu(pid: int) -> Callable[[], float | None]:
    """A reader of the CPU seconds (user + system) of ``pid`` and its live descendants,
    or of None where psutil is missing."""
    try:
        import psutil
    except ImportError:
        return lambda: None

    def read() -> float:
        root = psutil.Process(pid)
        total = 0.0
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = p.cpu_times()
                total += times.user + times.system
        return total

    return read


def _settled(stats: QueueStats) -> bool:
    return stats.waiting == 0 and stats.in_flight == 0


def worker_processes(b: Bench, n: int, count: int) -> Result:
    """``orizuru worker loads:cpu_job`` with ``--processes count`` handles ``n`` messages."""
    queue = b.queue("cpu")
    q = Queue(b.r, queue, prefix=b.prefix)
    command = [sys.executable, "-m", "orizuru_py", "--redis-url", b.url, "--prefix", b.prefix]
    command += ["--log-level", "WARNING", "worker", "loads:cpu_job", queue]
    command += ["--processes", str(count), "--concurrency", str(THREADS)]
    proc = subprocess.Popen(command, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ready = lambda: proc.poll() is not None or q.stats().live_consumers >= count  # noqa: E731
        wait_until(ready, _START, f"{count} worker processes registered")
        if proc.poll() is not None:
            raise RuntimeError(f"orizuru worker exited: {proc.communicate()[1].decode()[-500:]}")
        with Timer(b.r, tree_cpu(proc.pid)) as t:
            fill(b, queue, n)
            wait_until(lambda: _settled(q.stats()), _DONE, "every message acked", every=_POLL)
        stats = q.stats()
        if stats.dead or stats.unacked:
            raise RuntimeError(f"{stats.dead} dead, {stats.unacked} unacked of {n}")
    finally:
        _stop(proc)
        b.drop(queue)
    return t.result(n)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the worker as its user would (SIGTERM), at once if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def cases(seconds: float) -> list[Case]:
    """One process, then ``processes()``, on as many messages as the cores could handle
    in ``seconds``; the limit of each is the cores it can use over the handler's CPU."""
    many = processes()
    cores = min(many, os.cpu_count() or 1)
    n = max(100, round(cores / CPU_1MS.mean_s * seconds))
    out = []
    for count in (1, many):
        usable = min(count, cores)
        limit = Limit(usable, CPU_1MS.mean_s, cores=usable, group="cpu")
        label = f"orizuru worker --processes {count}, {CPU_1MS.label}"
        measure = partial(worker_processes, count=count)
        out.append(Case(f"processes_{count}_cpu1", label, n, measure, limit=limit))
    return out
