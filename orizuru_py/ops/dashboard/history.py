"""The last hour of every queue's counts, sampled by the dashboard into a bounded ring.

Kept in the dashboard's memory, never in Redis: a chart is a convenience, and the
queue's keys stay what DESIGN.md lists. The ring holds ``size`` samples (360 at the
default 10 s: one hour), each a tuple of numbers per queue, so memory is bounded by
samples x queues x ``FIELDS`` (about 5 MB for 100 queues).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from ..queue import QueueStats

FIELDS = ("waiting", "delayed", "unacked", "dead", "in_flight", "acked_per_s", "failed_per_s")

Row = tuple[float, ...]


def _row(s: QueueStats) -> Row:
    return (s.waiting, s.delayed, s.unacked, s.dead, s.in_flight, s.acked_per_s, s.failed_per_s)


class History:
    """A ring of samples; safe to add from one thread while others read."""

    def __init__(self, size: int = 360) -> None:
        if size < 2:
            raise ValueError(f"a history needs at least 2 samples, got {size!r}")
        self._samples: deque[tuple[int, dict[str, Row]]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, t_ms: int, stats: Sequence[QueueStats]) -> None:
        sample = {s.queue: _row(s) for s in stats}
        with self._lock:
            self._samples.append((t_ms, sample))

    def series(self, queue: str | None = None) -> dict[str, Any]:
        """One queue's samples, or the sum over all queues (``queue`` None), as columns:
        ``{"t": [ms, ...], "waiting": [...], ...}``; a queue absent from a sample is skipped."""
        with self._lock:
            samples = list(self._samples)
        columns: dict[str, list[float]] = {name: [] for name in ("t", *FIELDS)}
        for t_ms, rows in samples:
            if queue is None:
                values = [sum(col) for col in zip(*rows.values(), strict=True)] or [0] * len(FIELDS)
            elif queue in rows:
                values = list(rows[queue])
            else:
                continue
            columns["t"].append(t_ms)
            for name, value in zip(FIELDS, values, strict=True):
                columns[name].append(round(value, 3))
        return columns
