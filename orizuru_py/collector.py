"""GarbageCollector: return what no live consumer will settle to the queue.

It reaps consumers whose deadline has passed (what they took and never handed
out goes back uncounted; what they handed to the application, counted), returns
rejected messages from the unack list to the back of the queue (counted),
promotes due delayed messages, and forgets lapsed unique keys and stale
cancellation marks. A message delivered ``max_attempts`` times is
dead-lettered instead. Every step is bounded, its cost grows with the queue's
consumers, never with the keyspace, and no error ends it: a failing step is
logged and the next one, and the next pass, go on.

A collector that runs in a loop also guards against the server's clock being
stepped forward (an NTP correction, a VM resumed): every deadline would seem
passed at once, live consumers included, until each beats again. When the
server's clock has run ahead of this process's own monotonic clock by more than
``CLOCK_STEP`` since the last pass, it reaps nobody for ``CLOCK_HOLD`` seconds (by its
own clock): long enough for every live consumer to beat (at least every 0.5 s) and
set its deadline by the new time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs

from . import checks, schedule, scripts
from .client import TRANSIENT, Client
from .heartbeat import PROMOTE_BATCH, recover
from .keys import QueueKeys
from .outage import Retrying
from .plan import Driver, Pause, Plan, blocking

log = logging.getLogger("orizuru_py.collector")

_BATCH = 1000  # consumers listed, or messages moved, per script call
CLOCK_STEP = 1.0  # seconds the server clock may run ahead of ours between passes
CLOCK_HOLD = 2.0  # seconds of no reaping after such a jump
_MARK_MAX_AGE_MS = 24 * 3600 * 1000


@attrs.frozen
class CollectReport:
    """What one ``collect()`` did: messages returned to the queue with a delivery
    counted (``requeued``) or uncounted (``released``: never handed out), dead-lettered,
    consumers reaped, delayed messages promoted (periodic ticks pushed too)."""

    requeued: int = 0
    dead_lettered: int = 0
    consumers_reaped: int = 0
    promoted: int = 0
    released: int = 0

    def __add__(self, other: CollectReport) -> CollectReport:
        return CollectReport(
            *(a + b for a, b in zip(attrs.astuple(self), attrs.astuple(other), strict=True))
        )

    def __bool__(self) -> bool:
        return any(attrs.astuple(self))


class GarbageCollectorCore:
    """Recovers one queue's unsettled messages. Any number may run at once. ``on_report``
    is told what each pass of ``run()`` did (an empty report included)."""

    driver_class: type[Any] = Driver

    def __init__(
        self,
        r: Client,
        queue: str,
        *,
        max_attempts: int | None = checks.DEFAULT_MAX_ATTEMPTS,
        prefix: str = "orizuru",
        on_report: Callable[[CollectReport], None] | None = None,
    ) -> None:
        self.r = r
        self._driver = self.driver_class(r)
        self.keys = QueueKeys(queue, prefix)
        self.max_attempts = checks.max_attempts(max_attempts)
        self.on_report = on_report
        self._clock: tuple[int, float] | None = None  # (server ms, monotonic s) last pass
        self._hold_until = 0.0  # no reaping before this (monotonic), after a clock jump
        self._sweep_cursor: Any = 0
        self._wake_in = 0.0
        self._retrying = Retrying(r, f"gc of queue {queue}")

    async def _collect(self) -> CollectReport:
        """One full pass; returns what it moved. Errors propagate."""
        report = await self._reap(watch_clock=False)
        report += await self._requeue_unack()
        report += await self._promote()
        await self._sweep()
        return report

    async def _guarded_pass(self) -> CollectReport:
        """One pass for a collector that runs in a loop: a step that fails for a bug is
        logged and the next step goes on; an unreachable server ends the pass (the next
        one tries again); the clock is watched."""
        report = CollectReport()
        steps: tuple[Callable[[], Plan[Any]], ...] = (
            lambda: self._reap(watch_clock=True),
            self._requeue_unack,
            self._promote,
            self._sweep,
        )
        for step in steps:
            try:
                done = await step()
            except TRANSIENT as exc:
                self._retrying.failed(exc)
                break
            except Exception:
                log.exception("gc of queue %s failed a step; going on", self.keys.name)
                continue
            self._retrying.ok()
            if isinstance(done, CollectReport):
                report += done
        if report.consumers_reaped or report.dead_lettered:
            log.info("gc of queue %s: %s", self.keys.name, report)
        if self.on_report is not None:
            self.on_report(report)
        return report

    async def _run(self, interval: float) -> None:
        """Collect every ``interval`` seconds (sooner when a consumer's deadline falls
        due) until stopped."""
        checks.seconds(interval, "interval", positive=True)
        while True:
            self._wake_in = interval
            await self._guarded_pass()
            if await Pause(max(0.01, min(interval, self._wake_in))):
                return

    async def _reap(self, *, watch_clock: bool) -> CollectReport:
        report = CollectReport()
        now, names, upcoming = await scripts.expired(self.keys, _BATCH).run()
        if watch_clock and (self._clock_stepped(int(now)) or time.monotonic() < self._hold_until):
            return report
        if upcoming != -1:
            self._wake_in = min(self._wake_in, (upcoming - now) / 1000 + 0.01)
        for member in names:
            try:
                done, requeued, dead, released = await recover(
                    self.keys, member, self.max_attempts, "reap"
                )
            except TRANSIENT:
                raise
            except Exception:
                log.exception("gc of queue %s could not reap consumer %r", self.keys.name, member)
                continue
            if done:
                log.warning(
                    "reaped consumer %s of queue %s: %d requeued, %d dead-lettered, "
                    "%d unstarted handed back",
                    member.decode(errors="replace") if isinstance(member, bytes) else member,
                    self.keys.name,
                    requeued,
                    dead,
                    released,
                )
            report += CollectReport(requeued, dead, int(done == 1), 0, released)
        return report

    def _clock_stepped(self, server_ms: int) -> bool:
        """Whether the server's clock jumped ahead of ours since the last pass."""
        mono, last = time.monotonic(), self._clock
        self._clock = (server_ms, mono)
        if last is None:
            return False
        ahead = (server_ms - last[0]) / 1000 - (mono - last[1])
        if ahead > CLOCK_STEP:
            log.warning(
                "the clock of queue %s's server jumped %.1f s ahead of this process's; "
                "reaping nobody for %.0f s, so that live consumers can beat first",
                self.keys.name,
                ahead,
                CLOCK_HOLD,
            )
            self._hold_until = mono + CLOCK_HOLD
            return True
        if ahead < -CLOCK_STEP:
            log.warning(
                "the clock of queue %s's server went %.1f s back: a consumer that died just "
                "before is recovered that much later",
                self.keys.name,
                -ahead,
            )
        return False

    async def _requeue_unack(self) -> CollectReport:
        requeued = dead = 0
        step = scripts.requeue_unack(self.keys, self.max_attempts, _BATCH)
        while True:
            q, d = await step.run()
            requeued, dead = requeued + q, dead + d
            if q + d < _BATCH:
                return CollectReport(requeued, dead)

    async def _promote(self) -> CollectReport:
        promoted = 0
        step = scripts.promote(self.keys, PROMOTE_BATCH)
        while True:
            n = await step.run()
            promoted += n
            if n < PROMOTE_BATCH:
                ticks = await schedule.promote(self.keys)  # due periodic messages too
                return CollectReport(promoted=promoted + ticks)

    async def _sweep(self) -> None:
        """Forget lapsed unique keys and stale cancellation marks, a page per pass."""
        sweep = scripts.sweep(self.keys, _BATCH, self._sweep_cursor, _MARK_MAX_AGE_MS)
        _, _, cursor = await sweep.run()
        self._sweep_cursor = cursor


class GarbageCollector(GarbageCollectorCore):
    """Recovers one queue's unsettled messages (the blocking API)."""

    _driver: Driver

    collect = blocking(GarbageCollectorCore._collect)
    run = blocking(GarbageCollectorCore._run)

    def stop(self) -> None:
        """End ``run()`` (from any thread) within a moment."""
        self._driver.closed.set()

    def start(self, interval: float) -> threading.Thread:
        """``run(interval)`` in a daemon thread; ``stop()`` ends it."""
        thread = threading.Thread(
            target=self.run, args=(interval,), name=f"orizuru-gc-{self.keys.name}", daemon=True
        )
        thread.start()
        return thread
