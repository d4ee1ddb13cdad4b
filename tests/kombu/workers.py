"""Celery workers as real processes, for the kill tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import attrs

ROOT = Path(__file__).resolve().parents[2]


def orizuru_url(redis_url: str) -> str:
    return urlparse(redis_url)._replace(scheme="orizuru").geturl()


@attrs.define
class CeleryWorker:
    """One ``celery worker`` process (its own session: its pool children share its group)."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill_all(self) -> None:
        """SIGKILL the worker and whatever pool children outlived it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@attrs.define
class Cluster:
    """Workers of one app on one queue; ``notes`` is where its tasks write."""

    broker: str
    options: dict[str, Any]
    tmp: Path
    queue: str = attrs.field(factory=lambda: f"kill-{uuid.uuid4().hex[:10]}")
    workers: list[CeleryWorker] = attrs.field(factory=list)

    @property
    def notes(self) -> Path:
        return self.tmp / f"{self.queue}.notes"

    def start(self, name: str, pool: str) -> CeleryWorker:
        options = json.dumps(self.options)
        env = dict(os.environ, TEST_BROKER=self.broker, TEST_QUEUE=self.queue,
                   TEST_TRANSPORT_OPTIONS=options, PYTHONPATH=str(ROOT))  # fmt: skip
        log = self.tmp / f"{self.queue}-{name}.log"
        cmd = [sys.executable, "-m", "celery", "-A", "tests.kombu.celery_app", "worker",
               "-P", pool, "-c", "1", "-Q", self.queue, "-n", f"{name}@%h", "-l", "INFO",
               "--without-mingle", "--without-gossip", "--without-heartbeat"]  # fmt: skip
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip
        worker = CeleryWorker(name, proc, log)
        self.workers.append(worker)
        return worker

    def wait_ready(self, *workers: CeleryWorker, timeout: float = 60.0) -> None:
        for worker in workers:
            wait_for(lambda w=worker: b" ready." in w.log.read_bytes(), timeout,
                     f"worker {worker.name} ready")  # fmt: skip

    def lines(self, what: str = "") -> list[list[str]]:
        """The notes the tasks wrote: [what, hostname, pid, time], those of ``what``."""
        if not self.notes.exists():
            return []
        rows = [line.split() for line in self.notes.read_text().splitlines()]
        return [row for row in rows if not what or row[0] == what]

    def stop(self) -> None:
        for worker in self.workers:
            worker.kill_all()


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``check()`` held; fails the test after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start
