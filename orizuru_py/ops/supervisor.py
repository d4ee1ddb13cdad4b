"""``orizuru worker --processes N``: a supervisor and N worker processes, for handlers
that need more than one core.

The supervisor restarts a child that dies (after a growing pause when it dies soon
after starting, so a handler that crashes at once cannot fork-bomb the machine),
forwards SIGTERM/SIGINT to every child for a graceful stop (a second signal: at once)
and serves their summed metrics on one port, through prometheus_client's
multiprocess files in a temporary directory. Each child runs in its own process
group, so a Ctrl-C on the terminal reaches the supervisor only and each child hears
it once; a child whose supervisor vanished (SIGKILL) stops gracefully by itself.
``WorkerSpec`` is what crosses to a child: the command line's choices, from which
each process builds its own Worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from types import FrameType
from typing import Any

import attrs

from ..asyncio import Worker as AsyncWorker
from ..checks import is_async
from ..limits import RateLimit
from ..worker import Worker
from . import logs
from .clients import async_client, client
from .loading import load_codec, load_handler

log = logging.getLogger("orizuru_py.supervisor")

FAST_DEATH = 5.0  # a child that dies sooner than this after its start died "at once"
MAX_BACKOFF = 30.0  # the longest pause before restarting a child that keeps dying
POLL = 0.1  # seconds between looks at the children
STUCK = 3  # a child's exit code: a handler passed its time limit, so it stopped to be restarted


@attrs.frozen
class WorkerSpec:
    """Everything a worker process needs to build its Worker (it crosses to children)."""

    handler: str
    queues: tuple[str, ...]
    redis_url: str
    prefix: str
    log_level: str
    concurrency: int
    max_attempts: int
    heartbeat_timeout: float
    gc_interval: float | None
    pass_guard: bool
    codec: str | None = None
    rate_limit: str | None = None  # "100/s"
    rate_limit_key: str | None = None  # module:function
    time_limit: float | None = None
    metrics: bool = False  # count with a PrometheusObserver
    metrics_host: str = "127.0.0.1"  # where /metrics listens (--metrics-host)

    def worker(self, observer: Any = None) -> Worker | AsyncWorker:
        """The Worker of this spec: an asyncio one for an ``async def`` handler (default
        concurrency 100 tasks), else threads (default 8)."""
        handler = load_handler(self.handler)
        rate = None
        if self.rate_limit is not None:
            key = load_handler(self.rate_limit_key) if self.rate_limit_key else None
            rate = RateLimit.parse(self.rate_limit, key)
        options = dict(
            rate_limit=rate,
            time_limit=self.time_limit,
            max_attempts=self.max_attempts,
            heartbeat_timeout=self.heartbeat_timeout,
            gc_interval=self.gc_interval,
            pass_guard=self.pass_guard,
            codec=load_codec(self.codec),
            prefix=self.prefix,
            observer=observer,
        )
        if is_async(handler):
            concurrency = self.concurrency or 100
            r = async_client(self.redis_url)
            return AsyncWorker(r, list(self.queues), handler, concurrency=concurrency, **options)
        concurrency = self.concurrency or 8
        return Worker(client(self.redis_url), list(self.queues), handler, concurrency=concurrency,
                      **options)  # fmt: skip


def run_worker(worker: Worker | AsyncWorker) -> None:
    """Run a spec's Worker until it stops."""
    if isinstance(worker, AsyncWorker):
        asyncio.run(worker.run())
    else:
        worker.run()


def _child(spec: WorkerSpec) -> None:
    """A worker process: its own process group, the supervisor's log format, and a
    watch on the supervisor, whose death stops this worker gracefully."""
    os.setpgrp()
    logs.setup(spec.log_level)
    observer = None
    if spec.metrics:
        from .metrics import PrometheusObserver

        observer = PrometheusObserver(
            spec.queues, registry=None
        )  # the supervisor collects the files
    worker = spec.worker(observer)
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        log.warning("worker process %d: the supervisor is gone; stopping", os.getpid())
        worker.stop()

    threading.Thread(target=watch, name="orizuru-parent-watch", daemon=True).start()
    if isinstance(worker, Worker):
        worker.stop_when_stuck = True  # restarted, the process leaves no stuck thread behind
    run_worker(worker)
    if isinstance(worker, Worker) and worker.abandoned:
        log.warning(
            "worker process %d: a handler passed its time limit; stopping so that a fresh "
            "process replaces this one and its stuck thread",
            os.getpid(),
        )
        sys.exit(STUCK)


@attrs.define
class _Slot:
    """One child's place: the process in it now, when it started, its restart pause."""

    process: Any = None
    started: float = 0.0
    backoff: float = 0.0
    restart_at: float = 0.0


def died(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


class Supervisor:
    """Runs ``processes`` worker processes until a signal; restarts those that die."""

    def __init__(self, spec: WorkerSpec, processes: int, metrics_port: int | None) -> None:
        self.spec = attrs.evolve(spec, metrics=metrics_port is not None)
        self.slots = [_Slot() for _ in range(processes)]
        self.metrics_port = metrics_port
        self.signals = 0
        self._told: set[int] = set()  # children already sent the stop signal
        self._ctx = multiprocessing.get_context("spawn")
        self._metrics_dir: str | None = None

    def run(self) -> int:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            if self.metrics_port is not None:
                self._serve_metrics(self.metrics_port)
            log.info("%d worker processes on %s", len(self.slots), ", ".join(self.spec.queues))
            while not self.signals:
                self._tend()
                time.sleep(POLL)
            return self._wait_all()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            self._stop_all(signal.SIGKILL)  # only children still there after an error
            if self._metrics_dir is not None:
                shutil.rmtree(self._metrics_dir, ignore_errors=True)
                os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

    def pids(self) -> list[int]:
        return [s.process.pid for s in self.slots if s.process is not None and s.process.pid]

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        if self.signals == 1:
            log.info(
                "signal %d: stopping every worker process after its in-flight messages", signum
            )
        else:
            log.warning("second signal: stopping every worker process at once")
        self._stop_all(signal.SIGTERM)  # a child's Worker treats a second one as "at once"

    def _stop_all(self, signum: int) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
            self._told.add(pid)

    def _tend(self) -> None:
        """Start what is due; notice deaths and schedule restarts."""
        now = time.monotonic()
        for slot in self.slots:
            p = slot.process
            if p is not None and not p.is_alive():
                p.join()
                self._forget(p.pid)
                uptime = now - slot.started
                slot.backoff = (
                    0.0
                    if uptime >= FAST_DEATH or p.exitcode == STUCK
                    else min(MAX_BACKOFF, max(1.0, slot.backoff * 2))
                )
                slot.restart_at = now + slot.backoff
                slot.process = None
                log.warning(
                    "worker process %d died (%s) after %.1f s; restarting it in %.0f s",
                    p.pid,
                    died(p.exitcode),
                    uptime,
                    slot.backoff,
                )
            if slot.process is None and now >= slot.restart_at and not self.signals:
                slot.process = self._ctx.Process(
                    target=_child, args=(self.spec,), name="orizuru-worker"
                )
                slot.process.start()
                slot.started = now
                log.info("started worker process %d", slot.process.pid)

    def _wait_all(self) -> int:
        """Wait for every child to stop; 0 if each stopped cleanly. A child started while
        the signal came (its pid not yet known to the handler) is told now, once."""
        for pid in self.pids():
            if pid not in self._told:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                self._told.add(pid)
        code = 0
        for slot in self.slots:
            p = slot.process
            if p is None:
                continue
            while p.is_alive():  # a signal handler may interrupt join(); look again
                p.join(POLL)
            self._forget(p.pid)
            # Killed by our own SIGTERM: it came before the child's Worker listened for it
            # (a child just restarted), so the child held nothing yet.
            if p.exitcode not in (0, -signal.SIGTERM):
                log.warning("worker process %d ended: %s", p.pid, died(p.exitcode))
                code = 1
            slot.process = None
        log.info("every worker process stopped")
        return code

    def _serve_metrics(self, port: int) -> None:
        """Children count into files in a fresh directory; ``/metrics`` sums them and adds
        the queues' sizes."""
        self._metrics_dir = tempfile.mkdtemp(prefix="orizuru-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = self._metrics_dir  # children inherit it
        from prometheus_client import CollectorRegistry, multiprocess

        from .metrics import QueueCollector, serve

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self._metrics_dir)  # type: ignore[no-untyped-call]
        r = client(self.spec.redis_url)
        registry.register(QueueCollector(r, self.spec.queues, self.spec.prefix))
        serve(port, registry, host=self.spec.metrics_host)

    def _forget(self, pid: int) -> None:
        """A dead child's in-flight gauge goes; its counters stay in the sums."""
        if self._metrics_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, self._metrics_dir)  # type: ignore[no-untyped-call]
