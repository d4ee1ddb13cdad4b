"""Processes and threads a fault scenario runs: consumer children, a GC loop, a producer.

Everything here is a context manager that kills or stops what it started on
exit, whatever happened in between, so a failing test leaves nothing running.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import attrs
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orizuru_py import CollectReport, GarbageCollector, Producer

ROOT = Path(__file__).resolve().parents[2]
_LOG_TAIL = 2000


@attrs.define(eq=False)
class Child:
    """One consumer process. ``signalled`` is set once we sent what may end it."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    signalled: bool = False

    def tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-_LOG_TAIL:]


class Fleet:
    """Consumer processes (``python -m tests.faults.child``) of one queue.

    ``options`` become the child's ``--option value`` flags. A child that exits
    without being told to, or exits non-zero after SIGTERM, is a crash.
    """

    def __init__(self, url: str, queue: str, logdir: Path, mode: str = "consumer", **options: Any):
        self.url, self.queue, self.mode, self.logdir = url, queue, mode, logdir
        self.options = options
        self.children: list[Child] = []
        self.kills = 0
        logdir.mkdir(parents=True, exist_ok=True)

    def spawn(self, n: int = 1) -> list[Child]:
        return [self._spawn_one() for _ in range(n)]

    def _spawn_one(self) -> Child:
        name = f"{self.mode}-{len(self.children)}"
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in self.options.items()]
        cmd = [
            sys.executable,
            "-m",
            "tests.faults.child",
            self.url,
            self.queue,
            self.mode,
            f"--name={name}",
            *flags,
        ]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        log = self.logdir / f"{self.queue}-{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def live(self) -> list[Child]:
        return [c for c in self.children if not c.signalled and c.proc.poll() is None]

    def kill(self, child: Child) -> None:
        """SIGKILL: no cleanup at all, whatever the child was doing (stopped included)."""
        child.signalled = True
        child.proc.kill()
        child.proc.wait()
        self.kills += 1

    def replace(self, child: Child) -> Child:
        self.kill(child)
        return self._spawn_one()

    def freeze(self, child: Child) -> None:
        child.proc.send_signal(signal.SIGSTOP)

    def thaw(self, child: Child) -> None:
        child.proc.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every live child and wait; one that hangs is killed (and is a crash)."""
        running = self.live()
        for c in running:
            c.proc.send_signal(signal.SIGCONT)
            c.proc.terminate()
        end = time.monotonic() + timeout
        for c in running:
            try:
                c.proc.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.proc.kill()
                c.proc.wait()
            else:
                # -SIGTERM: it was still starting, before it could install its handler.
                c.signalled = c.proc.returncode in (0, -signal.SIGTERM)

    def crashes(self) -> list[str]:
        """Children that died on their own, or did not exit cleanly when asked to."""
        return [
            f"{c.name} exit {c.proc.returncode}:\n{c.tail()}"
            for c in self.children
            if c.proc.poll() is not None and not c.signalled
        ]

    def close(self) -> None:
        for c in self.children:
            if c.proc.poll() is None:
                c.proc.kill()
                c.proc.wait()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _InThread:
    """Runs ``_run`` in a daemon thread for the length of a ``with`` block; ``_run``
    ends when ``_stop`` is set."""

    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()


class GcLoop(_InThread):
    """A ``GarbageCollector`` collecting every ``interval`` s in a thread; it sums the
    reports (so a scenario can count reaped consumers) and survives connection errors."""

    def __init__(self, r: Any, queue: str, interval: float, max_attempts: int | None = None):
        self.gc = GarbageCollector(r, queue, max_attempts=max_attempts)
        self.interval = interval
        self.total = CollectReport()
        self.errors = 0
        super().__init__(f"faults-gc-{queue}")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.collect()

    def collect(self) -> None:
        try:
            self.total += self.gc.collect()
        except RedisError:
            self.errors += 1


class Pusher(_InThread):
    """Pushes ``total`` messages ``{"n": i}`` in chunks from a thread. The ids of pushes
    that returned are kept (each must be delivered); a push that raised is counted,
    and the next chunk is tried after a pause. ``pace`` s pass between chunks."""

    def __init__(self, r: Any, queue: str, total: int, chunk: int = 1, pace: float = 0.0):
        self.producer = Producer(r, queue)
        self.total, self.chunk, self.pace = total, chunk, pace
        self.ids: list[str] = []
        self.errors = 0
        self.attempted = 0
        super().__init__(f"faults-push-{queue}")

    def _run(self) -> None:
        while self.attempted < self.total and not self._stop.is_set():
            n = min(self.chunk, self.total - self.attempted)
            payloads = [{"n": self.attempted + i} for i in range(n)]
            self.attempted += n
            try:
                self.ids.extend(
                    self.producer.push_many(payloads)
                    if n > 1
                    else [self.producer.push(payloads[0])]
                )
            except (RedisConnectionError, RedisTimeoutError):
                self.errors += 1
                self._stop.wait(0.05)
            if self.pace:
                self._stop.wait(self.pace)

    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class PrivateServer:
    """An embedded server of a scenario's own: every write fsynced before it is
    acknowledged (appendonly, appendfsync always), on a fixed port so that clients
    find it again after ``kill()`` and ``restart()``. Killed on exit."""

    def __init__(self, data_dir: Path) -> None:
        from orizuru_py.ops.embedded import EmbeddedServer

        with socket.create_server(("127.0.0.1", 0)) as probe:
            port = probe.getsockname()[1]
        self.server = EmbeddedServer(data_dir, port=port, appendonly="yes", appendfsync="always")
        self.url = self.server.url
        self.restarts = 0

    def kill(self) -> None:
        self.server.kill()

    def restart(self) -> None:
        self.server.restart()
        self.restarts += 1

    def __enter__(self) -> PrivateServer:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.kill()
