"""The last hour of the queues' counts, sampled by the dashboard into a bounded ring.

Kept in the dashboard's memory, never in Redis: a chart is a convenience, and the
queue's keys stay what the README lists. Anyone who can push can register queue names,
so what a sample keeps does not grow with them: the totals over every queue, and the
rows of at most ``tracked`` queues (the busiest at that sample). Memory is bounded by
``size`` x (``tracked`` + 1) rows of ``FIELDS`` numbers: about 10 MB at the defaults.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

import attrs

from ...stats import QueueStats

FIELDS = ("waiting", "delayed", "unacked", "dead", "in_flight", "acked_per_s", "failed_per_s")

Row = tuple[float, ...]


def _row(s: QueueStats) -> Row:
    if not s.consumers:  # most queues, of many: skip the properties that walk consumers
        return (s.waiting, s.delayed, s.unacked, s.dead, 0, 0.0, 0.0)
    return (s.waiting, s.delayed, s.unacked, s.dead, s.in_flight, s.acked_per_s, s.failed_per_s)


@attrs.define
class Totals:
    """The sums over every queue of a sample: what the overview's tiles show."""

    queues: int = 0
    paused: int = 0
    waiting: int = 0
    delayed: int = 0
    unacked: int = 0
    dead: int = 0
    in_flight: int = 0
    live_consumers: int = 0
    overdue_consumers: int = 0
    silent_consumers: int = 0
    acked_per_s: float = 0.0
    failed_per_s: float = 0.0
    oldest_waiting_s: float | None = None

    def add(self, s: QueueStats) -> Row:
        """Count ``s`` in; its row of ``FIELDS``."""
        row = _row(s)
        self.queues += 1
        self.paused += s.paused
        if s.consumers:
            live = s.live_consumers
            self.live_consumers += live
            self.overdue_consumers += len(s.consumers) - live
            self.silent_consumers += s.silent_consumers
        if s.oldest_waiting_s is not None:
            self.oldest_waiting_s = max(self.oldest_waiting_s or 0.0, s.oldest_waiting_s)
        for name, value in zip(FIELDS, row, strict=True):
            setattr(self, name, getattr(self, name) + value)
        return row

    @classmethod
    def of(cls, stats: Iterable[QueueStats]) -> Totals:
        totals = cls()
        for s in stats:
            totals.add(s)
        return totals

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class _Sample:
    t_ms: int
    total: Row
    rows: dict[str, Row]  # the tracked queues only


class History:
    """A ring of samples; safe to add from one thread while others read."""

    def __init__(self, size: int = 360, tracked: int = 100) -> None:
        if size < 2:
            raise ValueError(f"a history needs at least 2 samples, got {size!r}")
        if tracked < 0:
            raise ValueError(f"tracked must be >= 0, got {tracked!r}")
        self.tracked = tracked
        self._samples: deque[_Sample] = deque(maxlen=size)
        self._latest: tuple[int, Totals] | None = None
        self._lock = threading.Lock()

    def add(self, t_ms: int, stats: Iterable[QueueStats]) -> None:
        """One sample of ``stats`` (an iterable: it may come in chunks, nothing of it
        is kept but the totals and the busiest ``tracked`` rows)."""
        totals = Totals()
        busiest: list[tuple[float, str, Row]] = []
        for s in stats:
            row = totals.add(s)
            item = (sum(row), s.queue, row)  # the busiest: most messages held, fastest
            if len(busiest) < self.tracked:
                heapq.heappush(busiest, item)
            elif self.tracked and item > busiest[0]:
                heapq.heapreplace(busiest, item)
        total = tuple(getattr(totals, name) for name in FIELDS)
        sample = _Sample(t_ms, total, {name: row for _, name, row in busiest})
        with self._lock:
            self._samples.append(sample)
            self._latest = (t_ms, totals)

    def latest(self) -> tuple[int, Totals] | None:
        """When the last sample was taken, and its totals (None before the first)."""
        with self._lock:
            return self._latest

    def series(self, queue: str | None = None) -> dict[str, Any]:
        """One queue's samples, or the totals (``queue`` None), as columns:
        ``{"t": [ms, ...], "waiting": [...], ...}``; a sample that did not keep the
        queue (absent, or not among the busiest) is skipped."""
        with self._lock:
            samples = list(self._samples)
        columns: dict[str, list[float]] = {name: [] for name in ("t", *FIELDS)}
        for sample in samples:
            values = sample.total if queue is None else sample.rows.get(queue)
            if values is None:
                continue
            columns["t"].append(sample.t_ms)
            for name, value in zip(FIELDS, values, strict=True):
                columns[name].append(round(value, 3))
        return columns
