"""Time limits: a handler still running after ``time_limit`` seconds is a failed attempt
(``TimeLimitExceeded``: retried, then dead-lettered), its late result ignored, and the
worker keeps its concurrency.

An asyncio handler is cancelled (``within``). A Python thread cannot be stopped in a
blocking call, so the blocking Worker's watchdog abandons it instead (``Watched``): it
answers the stuck thread's ``RunChunk`` itself (the outcomes of the handlers that
finished, then the time limit for the stuck one), and a fresh thread resumes the
working loop's plan with that answer: the failure is judged, the rest of the chunk
runs, exactly as if the handler had raised. The abandoned thread runs on until its
handler returns, then finds its plan gone (``PlanMoved``), drops the late result and
ends. A thread that never returns costs its stack and whatever its handler holds, for
the life of the process (``orizuru worker --processes`` restarts the process instead).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable

import attrs

from .errors import TimeLimitExceeded
from .guard import GuardCore
from .plan import Plan, PlanMoved

Outcome = tuple[BaseException | None, float]  # a handler run: its exception (or None), seconds


def exceeded(limit: float) -> TimeLimitExceeded:
    return TimeLimitExceeded(f"time limit {limit:g} s")


async def within(call: Awaitable[object], limit: float) -> None:
    """Await an asyncio handler's ``call``, cancelled after ``limit`` seconds; past it,
    ``TimeLimitExceeded`` (also when the handler swallowed the cancellation and returned:
    a late result is no success)."""
    timeout = asyncio.timeout(limit)
    try:
        async with timeout:
            await call
    except TimeoutError:
        if timeout.expired():
            raise exceeded(limit) from None
        raise
    if timeout.expired():
        raise exceeded(limit)


@attrs.define(eq=False)
class Watched:
    """A working thread's plan, and the handler call it is in: ``guard`` (None: in none),
    since ``since`` (``time.perf_counter``), after the outcomes ``out`` of its chunk."""

    plan: Plan[None]
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    guard: GuardCore | None = None
    out: list[Outcome] = attrs.field(factory=list)
    since: float = 0.0
    abandoned: bool = False

    def begin(self, guard: GuardCore, out: list[Outcome], since: float) -> None:
        with self.lock:
            self.guard, self.out, self.since = guard, out, since

    def end(self) -> None:
        """The handler returned: go on, or (abandoned meanwhile) let go of the plan."""
        with self.lock:
            if self.abandoned:
                raise PlanMoved
            self.guard = None

    def overdue(self, now: float, limit: float) -> list[Outcome] | None:
        """If its handler has run past ``limit``: abandon the thread, and return the
        answer to its ``RunChunk`` with which another thread resumes the plan."""
        with self.lock:
            if self.guard is None or self.abandoned or now - self.since <= limit:
                return None
            self.abandoned = True
            return [*self.out, (exceeded(limit), now - self.since)]
