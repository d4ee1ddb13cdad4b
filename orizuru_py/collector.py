"""GarbageCollector: return what no live consumer will settle to the queue.

It reaps consumers whose deadline has passed (their processing lists go back
to the front of the queue), returns rejected messages from the unack list to
the back of the queue, and promotes due delayed messages. Each return counts
a delivery; a message delivered ``max_attempts`` times is dead-lettered
instead. Its cost grows with the queue's consumers, never with the keyspace.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import attrs
from redis.exceptions import RedisError

from . import scripts
from .heartbeat import PROMOTE_BATCH
from .keys import QueueKeys

log = logging.getLogger("orizuru_py.collector")

DEFAULT_MAX_ATTEMPTS = 5
# Consumers listed, or rejected messages moved, per script call, so no call blocks Redis
# for long. A reaped consumer's list goes back in one call: it holds one batch or so.
_BATCH = 1000


@attrs.frozen
class CollectReport:
    """What one ``collect()`` did."""

    requeued: int = 0
    dead_lettered: int = 0
    consumers_reaped: int = 0
    promoted: int = 0

    def __add__(self, other: CollectReport) -> CollectReport:
        return CollectReport(
            *(a + b for a, b in zip(attrs.astuple(self), attrs.astuple(other), strict=True))
        )


def _validate_max_attempts(value: int | None) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"max_attempts must be None or an int >= 1, got {value!r}")
    return value


class GarbageCollector:
    """Recovers one queue's unsettled messages. Any number may run at once."""

    def __init__(
        self,
        r: Any,
        queue: str,
        *,
        max_attempts: int | None = DEFAULT_MAX_ATTEMPTS,
        prefix: str = "orizuru",
    ) -> None:
        self.r = r
        self.keys = QueueKeys(queue, prefix)
        self.max_attempts = _validate_max_attempts(max_attempts)

    def collect(self) -> CollectReport:
        """One full pass; returns what it moved."""
        return self._reap() + self._requeue_unack() + self._promote()

    def run(self, interval: float, stop: threading.Event) -> None:
        """Collect every ``interval`` seconds until ``stop`` is set; errors are logged."""
        while not stop.wait(interval):
            try:
                report = self.collect()
            except RedisError as exc:
                log.warning("gc of queue %s failed: %s", self.keys.name, exc)
                continue
            if report.consumers_reaped or report.dead_lettered:
                log.info("gc of queue %s: %s", self.keys.name, report)

    def start(self, interval: float) -> tuple[threading.Thread, threading.Event]:
        """Run ``run`` in a daemon thread; set the returned event to stop it."""
        stop = threading.Event()
        thread = threading.Thread(
            target=self.run, args=(interval, stop), name=f"orizuru-gc-{self.keys.name}", daemon=True
        )
        thread.start()
        return thread, stop

    def _reap(self) -> CollectReport:
        reaped = requeued = dead = 0
        for name in scripts.EXPIRED(self.r, (self.keys.consumers,), (_BATCH,)):
            consumer = name.decode() if isinstance(name, bytes) else name
            keys = (
                self.keys.consumers,
                self.keys.processing(consumer),
                self.keys.queue,
                self.keys.dead,
            )
            r_, q_, d_ = scripts.REAP(self.r, keys, (consumer, self.max_attempts))
            if r_:
                log.warning(
                    "reaped consumer %s of queue %s: %d requeued, %d dead-lettered",
                    consumer,
                    self.keys.name,
                    q_,
                    d_,
                )
            reaped, requeued, dead = reaped + r_, requeued + q_, dead + d_
        return CollectReport(requeued, dead, reaped)

    def _requeue_unack(self) -> CollectReport:
        requeued = dead = 0
        keys = (self.keys.unack, self.keys.queue, self.keys.dead)
        while True:
            q_, d_ = scripts.REQUEUE_UNACK(self.r, keys, (self.max_attempts, _BATCH))
            requeued, dead = requeued + q_, dead + d_
            if q_ + d_ < _BATCH:
                return CollectReport(requeued, dead)

    def _promote(self) -> CollectReport:
        promoted = 0
        while True:
            n = scripts.PROMOTE(self.r, (self.keys.delayed, self.keys.queue), (PROMOTE_BATCH,))
            promoted += n
            if n < PROMOTE_BATCH:
                return CollectReport(promoted=promoted)
