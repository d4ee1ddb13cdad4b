"""The ``orizuru`` command run as a user runs it (a subprocess), for the CLI's tests."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
ORIZURU = [sys.executable, "-m", "orizuru_py"]


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without the variables that name a server, plus ``extra``."""
    names = ("REDIS_URL", "ORIZURU_REDIS_URL")
    return {**{k: v for k, v in os.environ.items() if k not in names}, **extra}


def orizuru(
    *args: str, env: dict[str, str] | None = None, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """``python -m orizuru_py ARGS`` to its end, output captured."""
    return subprocess.run(
        [*ORIZURU, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=environment(**(env or {})),
        stdin=subprocess.DEVNULL,
        **kw,
    )


def ok(*args: str) -> str:
    done = orizuru(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line an error prints (and nothing on stdout, no traceback)."""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("orizuru: error: ")
    assert done.stdout == ""
    return lines[0]


@contextlib.contextmanager
def started(args: list[str], **kw: Any) -> Iterator[subprocess.Popen[str]]:
    """``orizuru ARGS`` running in a session of its own, killed with everything it started
    (a Valkey, worker processes) if it is still running at the end, so that a failing
    test neither hangs on it nor leaves it behind."""
    kw.setdefault("env", environment())
    with subprocess.Popen(
        [*ORIZURU, *args], cwd=ROOT, text=True, start_new_session=True, **kw
    ) as p:
        try:
            yield p
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)


class Lines:
    """The lines a running process writes to a pipe, read in a thread, so that a test can
    wait for one without hanging when it never comes."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _next(self, end: float, waiting_for: str) -> str | None:
        try:
            line = self._lines.get(timeout=max(0.0, end - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no {waiting_for} in time; printed: {self.seen}") from None
        if line is not None:
            self.seen.append(line)
        return line

    def until(self, text: str, timeout: float = 30.0) -> str:
        """The next line that contains ``text``; fails at the end of the output or after
        ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while (line := self._next(end, f"line with {text!r}")) is not None:
            if text in line:
                return line
        raise AssertionError(f"output ended with no line with {text!r}: {self.seen}")

    def rest(self, timeout: float = 30.0) -> list[str]:
        """Every line from here to the end of the output."""
        end, start = time.monotonic() + timeout, len(self.seen)
        while self._next(end, "end of the output") is not None:
            pass
        return self.seen[start:]
