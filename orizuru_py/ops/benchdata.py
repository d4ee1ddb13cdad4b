"""The data of a benchmark run: where it runs (``Bench``), what one measurement found
(``Result``, timed by ``Timer``), what is measured (``Case``, with the ``Limit`` of a row
that runs real handlers) and what its rounds found (``Row``).

Both the measurements (``bench``) and their report (``benchreport``) import these; neither
imports the other's module for them.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import redis

from ..keys import QueueKeys


@attrs.define
class Bench:
    """Where measurements run: a server, a client, and a key prefix unique to this run."""

    url: str
    r: Any = attrs.field(init=False)
    prefix: str = attrs.field(factory=lambda: f"bench-{os.urandom(4).hex()}")
    _serial: Iterator[int] = attrs.field(factory=itertools.count, init=False)

    def __attrs_post_init__(self) -> None:
        self.r = redis.Redis.from_url(self.url)

    def queue(self, case: str) -> str:
        """A fresh queue name for one measurement."""
        return f"{case}-{next(self._serial)}"

    def keys(self, queue: str) -> QueueKeys:
        return QueueKeys(queue, self.prefix)

    def drop(self, queue: str) -> None:
        """Delete every key of ``queue`` (benchmarks may SCAN; the library never does)."""
        self._delete(f"{self.keys(queue).base}*")

    def cleanup(self) -> None:
        """Delete every key this run created, under any library's naming."""
        self._delete(f"*{self.prefix}*")

    def _delete(self, pattern: str) -> None:
        batch: list[bytes] = []
        for key in self.r.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) == 1000:
                self.r.delete(*batch)
                batch.clear()
        if batch:
            self.r.delete(*batch)


@attrs.frozen
class Result:
    """One measurement: wall seconds, the measured process's CPU seconds (all its threads;
    None where it could not be read), and the server's CPU seconds where INFO reports them.
    CPU moves far less than wall time on a shared machine, and says on which side of the
    socket the time went."""

    messages: int
    seconds: float
    cpu: float | None = 0.0
    server_cpu: float | None = None

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    def __add__(self, other: Result) -> Result:
        return Result(
            self.messages + other.messages,
            self.seconds + other.seconds,
            _plus(self.cpu, other.cpu),
            _plus(self.server_cpu, other.server_cpu),
        )


def _plus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def server_cpu(r: Any) -> float | None:
    """The server's CPU seconds so far (user + system), or None where INFO lacks them."""
    info = r.info("cpu")
    try:
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    except (KeyError, TypeError, ValueError):
        return None


class Timer:
    """Times a ``with`` block: wall clock, a process's CPU (``cpu``: this one's by
    default), the server's CPU (read outside the block, so the reads are not timed)."""

    def __init__(self, r: Any, cpu: Callable[[], float | None] = time.process_time) -> None:
        self.r = r
        self.seconds = 0.0
        self.cpu: float | None = 0.0
        self.server_cpu: float | None = None
        self._read_cpu = cpu

    def __enter__(self) -> Timer:
        self._server = server_cpu(self.r)
        self._cpu = self._read_cpu()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._wall
        end = self._read_cpu()
        self.cpu = None if end is None or self._cpu is None else end - self._cpu
        server = server_cpu(self.r)
        if server is not None and self._server is not None:
            self.server_cpu = server - self._server

    def result(self, messages: int) -> Result:
        return Result(messages, self.seconds, self.cpu, self.server_cpu)


Measure = Callable[["Bench", int], Result]


class Skipped(Exception):
    """A case that cannot run here (a peer not installed, or failing at this size); the
    message says why."""


@attrs.frozen
class Limit:
    """The rate a row running real handlers could reach: ``parallel`` handlers at once
    (threads, tasks, or the cores a CPU-bound handler can use), each taking ``handler_s``
    seconds on average; its worker can use ``cores`` cores. Rows of one ``group`` run the
    same handlers at the same concurrency, and are compared with the group's first row.
    ``measured`` names the group's row that runs the handlers alone (no queue), when it
    has one: its rate is what they allow on this machine, below ``ideal``."""

    parallel: int
    handler_s: float
    cores: int = 1
    group: str = ""
    measured: str = ""

    @property
    def ideal(self) -> float:
        """Jobs per second if every handler slot were always busy."""
        return self.parallel / self.handler_s


@attrs.frozen
class Case:
    """A named measurement, sized in messages, compared to ``ceiling`` when it has one.
    A case in ``slices`` is measured in that many parts per round, interleaved with the
    other sliced cases, so a path and its ceiling see the same moments of a drifting load.
    ``note`` says what a reader must know of the row (a peer that cannot reach the
    concurrency asked, say)."""

    name: str
    label: str
    messages: int
    measure: Measure
    ceiling: str | None = None
    slices: int = 1
    limit: Limit | None = None
    note: str = ""


@attrs.define
class Row:
    """A case and what its rounds measured."""

    case: Case
    results: list[Result] = attrs.field(factory=list)
    note: str | None = None

    @property
    def rates(self) -> list[float]:
        return [r.rate for r in self.results]

    @property
    def median(self) -> float | None:
        return statistics.median(self.rates) if self.results else None

    @property
    def cpu_us(self) -> float | None:
        """Median microseconds of the measured process's CPU per message."""
        return _median_us([r.cpu for r in self.results], self.results)

    @property
    def server_us(self) -> float | None:
        """Median microseconds of server CPU per message (None where not reported)."""
        return _median_us([r.server_cpu for r in self.results], self.results)


def _median_us(values: Sequence[float | None], results: Sequence[Result]) -> float | None:
    per = [v / r.messages * 1e6 for v, r in zip(values, results, strict=True) if v is not None]
    return statistics.median(per) if per and len(per) == len(results) else None
