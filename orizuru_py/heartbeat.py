"""Heartbeat: a consumer's registration, on the server's clock, and its end.

A consumer is registered in its queue's ``consumers`` set with a deadline
``heartbeat_timeout`` ahead on the server's clock. A beat every ``tick``
seconds (from a thread, or a task) renews it, promotes due delayed messages,
publishes what the consumer has done (for stats, top, metrics), and tells
whether cancellations are pending. A slow handler never stops the beat, so only
a consumer that is dead (or frozen past its deadline) is reaped. ``recover``
moves a consumer's lists back to the queue, when it closes or when the GC
reaps it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

import msgpack

from . import envelope, schedule, scripts
from .client import TRANSIENT
from .held import Held
from .keys import QueueKeys
from .outage import Retrying
from .plan import Call, Pause, raise_any

log = logging.getLogger("orizuru_py.heartbeat")

PROMOTE_BATCH = 1000
RECOVER_CHUNK = 500  # messages moved per script call when a consumer closes or is reaped
_RATE_WINDOW = 60.0  # seconds over which a consumer's published rates are taken


class Heartbeat:
    """One consumer's registration: its clock, its deadline, what it publishes."""

    def __init__(self, held: Held, name: str, timeout_ms: int, retrying: Retrying) -> None:
        self.held, self.name, self.timeout_ms, self.retrying = held, name, timeout_ms, retrying
        self.keys, self.id = held.keys, held.consumer_id
        self.clock = (0, 0.0)  # (server ms, monotonic s) when the last beat was sent
        self.registered = False
        self._born_ms = envelope.now_ms()
        self._fenced = 0.0  # when (monotonic) we last fenced off what we held
        self._rates: deque[tuple[float, int, int]] = deque()

    async def beat(self, extra: Sequence[tuple[Any, ...]] = ()) -> None:
        """Register once with a fresh deadline, promote due delayed messages and see when
        the first periodic message is due, in one round trip (``extra`` commands too);
        see pending cancellations; push periodic messages if one was due."""
        k, held = self.keys, self.held
        calls: list[scripts.Command] = [
            scripts.register(k, self.id, self.timeout_ms, self.info()),
            scripts.promote(k, PROMOTE_BATCH),
            schedule.earliest(k),
            *extra,
        ]
        sent = time.monotonic()
        replies = await scripts.batch(calls)
        fresh, server_ms, pending = raise_any(replies[:1])[0]
        raise_any(replies[3:])
        if isinstance(replies[1], Exception):  # a foreign value in the delayed key, say
            log.warning("queue %s: could not promote delayed messages: %s", k.name, replies[1])
        self.clock = (int(server_ms), sent)
        held.cancels_pending = pending
        if fresh:
            self.fresh(k.name)
        ids = held.ids() if pending and held.count else []
        if ids:
            marks = await Call(("HMGET", k.cancel, *ids))
            held.cancelled = frozenset(i for i, m in zip(ids, marks, strict=True) if m)
        elif held.cancelled:
            held.cancelled = frozenset()
        await schedule.push_due(k, replies[2], int(server_ms))

    def late(self) -> bool:
        """Whether the GC may have reaped us since our last beat went through, or since
        the last fence: a timeout has passed since then (reckoned from when that beat was
        sent: early, never late)."""
        return time.monotonic() - max(self.clock[1], self._fenced) > self.timeout_ms / 1000

    def fence(self) -> None:
        """Fence off what we hold: guards taken before now must not run here
        (``Held.fence``), and our lists are reconciled. Takes from now on register a
        deadline a timeout ahead, so what they bring is safe for that long."""
        self._fenced = time.monotonic()
        self.held.fence()
        self.held.stale = True

    def deadline_ms(self) -> int:
        """A deadline ``timeout`` ahead on the server's clock, as last read and advanced by
        ours since (taken from when the beat was sent: a little late, never early)."""
        server_ms, at = self.clock
        return server_ms + int((time.monotonic() - at) * 1000) + self.timeout_ms

    def fresh(self, queue: str) -> None:
        """The server did not know us: first registration, or we had been reaped (then
        what we held before is fenced off: the GC returned it to the queue)."""
        if self.registered:
            log.warning(
                "consumer %s of queue %s had been reaped (frozen past its deadline, or "
                "its event loop blocked?); registered again, its earlier messages were "
                "returned to the queue and none of them not yet begun will run here",
                self.id,
                queue,
            )
            if time.monotonic() - self._fenced > self.timeout_ms / 1000:  # else fenced since
                self.fence()
        self.registered = True

    def info(self) -> bytes:
        """What the consumer publishes with each beat, for stats, top and metrics."""
        now = time.monotonic()
        rates, consumer = self._rates, self.held
        rates.append((now, consumer.handled, consumer.failed))
        while len(rates) > 2 and now - rates[1][0] >= _RATE_WINDOW:
            rates.popleft()
        then, handled, failed = rates[0]
        span = max(now - then, 1e-9)
        return msgpack.packb(  # type: ignore[no-any-return]
            {
                "name": self.name,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started_ms": self._born_ms,
                "timeout_ms": self.timeout_ms,
                "held": consumer.count,
                "handled": consumer.handled,
                "failed": consumer.failed,
                "acked_per_s": (consumer.handled - handled) / span if len(rates) > 1 else 0.0,
                "failed_per_s": (consumer.failed - failed) / span if len(rates) > 1 else 0.0,
            }
        )


class HasHeartbeat(Protocol):
    id: str
    heartbeat: Heartbeat


async def beat_forever(ref: weakref.ref[Any], tick: float) -> None:
    """Beat every ``tick`` s while the consumer lives and is not closed. Holds the
    consumer only through ``ref`` between beats, so a consumer dropped without
    ``close()`` stops beating and the GC recovers what it took."""
    while not (await Pause(tick)):
        consumer: HasHeartbeat | None = ref()
        if consumer is None:
            return
        retrying = consumer.heartbeat.retrying
        try:
            await consumer.heartbeat.beat()
            retrying.ok()
        except TRANSIENT as exc:
            retrying.failed(exc)  # the beat keeps its pace: only the log is shared
        except Exception:
            log.exception("heartbeat of consumer %s failed", consumer.id)
        del consumer


async def recover(
    keys: QueueKeys, member: str | bytes, max_attempts: int, mode: str
) -> tuple[int, int, int, int]:
    """Move a consumer's lists back to the queue in bounded steps (``mode`` "close" for
    its own close, "reap" for the GC, which moves only once its deadline passed).
    Returns (done, requeued, dead-lettered, handed back uncounted) summed over steps."""
    step = scripts.recover(keys, member, max_attempts, RECOVER_CHUNK, mode)
    requeued = dead = released = 0
    while True:
        state, r, d, b = await step.run()
        requeued, dead, released = requeued + r, dead + d, released + b
        if state != 2:
            return int(state), requeued, dead, released
