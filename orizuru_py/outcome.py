"""What a handler's run makes of its message, and a worker's tally of them.

A handler that returns: acked. One that raises (anything, SystemExit included): a
failed attempt, retried after a backoff, dead-lettered with the exception's text
once the message has been delivered ``max_attempts`` times.
"""

from __future__ import annotations

import logging
import time
import traceback

import attrs

from .backoff import Backoff
from .guard import GuardCore

log = logging.getLogger("orizuru_py.worker")


@attrs.define
class WorkerStats:
    """What a worker has done since it started; ``in_flight``: messages in a handler."""

    handled: int = 0
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
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
    or (``delay`` None) the dead-letter list with ``reason``."""

    reason: str
    delay: float | None


def judge(
    guard: GuardCore, exc: BaseException, max_attempts: int, backoff: Backoff
) -> Failure | None:
    """Decide, and log, what a failed attempt becomes (None: the handler had already
    settled the message itself, nothing more to do)."""
    reason = f"{type(exc).__name__}: {exc}"
    if guard.settled:
        log.error(
            "message %s attempt %d failed after settling: %s", guard.id, guard.attempts, reason
        )
        return None
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
