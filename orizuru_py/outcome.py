"""What a handler's run makes of its message, and a worker's tally of them.

A handler that returns: acked. One that raises (anything, SystemExit included): a
failed attempt, retried after a backoff, dead-lettered with the exception's text
once the message has been delivered ``max_attempts`` times. One that raises
``RateLimited`` comes back later without counting an attempt.
"""

from __future__ import annotations

import logging
import time
import traceback

import attrs

from .backoff import Backoff
from .errors import RateLimited
from .guard import GuardCore
from .limits import RateLimit

log = logging.getLogger("orizuru_py.worker")


@attrs.define
class WorkerStats:
    """What a worker has done since it started; ``in_flight``: messages in a handler."""

    handled: int = 0
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    rate_limited: int = 0  # handlers that raised RateLimited (back later, uncounted)
    in_flight: int = 0
    started_at: float = attrs.field(factory=time.monotonic)

    def summary(self) -> str:
        up = time.monotonic() - self.started_at
        return (
            f"{self.handled} handled, {self.failed} failed ({self.retried} retried, "
            f"{self.dead_lettered} dead-lettered) in {up:.1f} s, "
            f"{self.handled / max(up, 1e-9):.1f} msg/s"
        )


@attrs.frozen
class Failure:
    """What a handler's exception makes of its message: a retry after ``delay`` seconds,
    or (``delay`` None) the dead-letter list with ``reason``; with ``limiter`` (the
    handler raised ``RateLimited``), back after ``delay`` uncounted, that limiter paused."""

    reason: str
    delay: float | None
    limiter: str | None = None


def judge(
    guard: GuardCore,
    exc: BaseException,
    max_attempts: int,
    backoff: Backoff,
    rate: RateLimit | None = None,
) -> Failure | None:
    """Decide, and log, what a failed attempt becomes (None: the handler had already
    settled the message itself, nothing more to do)."""
    reason = f"{type(exc).__name__}: {exc}"
    if guard.settled:
        log.error(
            "message %s attempt %d failed after settling: %s", guard.id, guard.attempts, reason
        )
        return None
    if isinstance(exc, RateLimited):
        limiter = rate.name_of(guard.payload) if rate is not None else ""
        log.info("message %s of queue %s: %s, uncounted%s", guard.id, guard.queue, exc,
                 f" (limiter {limiter!r} paused)" if limiter else "")  # fmt: skip
        return Failure(reason, exc.retry_after, limiter)
    if guard.attempts >= max_attempts:
        log.error(
            "message %s of queue %s attempt %d/%d failed, dead-lettered: %s\n%s",
            guard.id,
            guard.queue,
            guard.attempts,
            max_attempts,
            reason,
            "".join(traceback.format_exception(exc)).rstrip(),
        )
        return Failure(reason, None)
    delay = backoff(guard.attempts)
    log.warning(
        "message %s of queue %s attempt %d/%d failed, retry in %.1f s: %s",
        guard.id,
        guard.queue,
        guard.attempts,
        max_attempts,
        delay,
        reason,
    )
    return Failure(reason, delay)
