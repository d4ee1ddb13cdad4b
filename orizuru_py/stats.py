"""What ``Queue.stats`` reads: a queue's counts and consumers, in two round trips for
any number of queues, and what each consumer published with its beat.

A consumer's record is written by whoever can write to the queue's keys, so each of its
fields is read on its own with a default: one bad record shows zeros for that consumer,
never an error for the whole overview.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import msgpack

from . import scripts
from .envelope import enqueued_ms
from .keys import QueueKeys
from .plan import raise_any

LIVE, SILENT, OVERDUE = "live", "silent", "overdue"
THROTTLED_SHOWN = 50


@attrs.frozen
class ConsumerStats:
    """One consumer as a queue's stats show it."""

    name: str  # its id, name@token: the name tells host and pid by default
    held: int  # messages in its lists (taken, or in a handler)
    last_beat_s: float  # seconds since its last beat, on the server's clock
    overdue: bool  # its deadline passed: dead or frozen, awaiting the GC
    handled: int = 0  # since it started, as published with its last beat
    failed: int = 0
    acked_per_s: float = 0.0  # over its last minute
    failed_per_s: float = 0.0
    host: str = ""
    pid: int = 0
    uptime_s: float = 0.0
    timeout_s: float = 0.0  # its heartbeat timeout (0: it did not say)

    @property
    def beat_s(self) -> float:
        """Seconds between its beats, as a consumer computes them from its timeout."""
        return min(0.5, self.timeout_s / 4)

    @property
    def state(self) -> str:
        """``overdue`` past its deadline; ``silent`` once it missed two beats (its
        process may have died: the GC reclaims it at the deadline); else ``live``."""
        if self.overdue:
            return OVERDUE
        if self.timeout_s > 0 and self.last_beat_s > 2 * self.beat_s:
            return SILENT
        return LIVE

    def to_json(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "state": self.state}


@attrs.frozen
class QueueStats:
    """A queue's counts and consumers, as read in one go."""

    queue: str
    waiting: int
    delayed: int
    unacked: int
    dead: int
    expired: int
    cancelled: int
    paused: bool
    oldest_waiting_s: float | None  # age of the next message up (latency)
    reaped: int  # consumers the GC reaped, ever
    recovered: int  # messages the GC returned from reaped consumers, ever
    consumers: list[ConsumerStats]
    # Rate limiters holding starts back now: limiter key ("" the queue's own) -> seconds
    # until it frees (of the first THROTTLED_SHOWN entries the server hands out).
    throttled: dict[str, float] = attrs.field(factory=dict)

    @property
    def in_flight(self) -> int:
        return sum(c.held for c in self.consumers)

    @property
    def acked_per_s(self) -> float:
        return sum(c.acked_per_s for c in self.consumers if not c.overdue)

    @property
    def failed_per_s(self) -> float:
        return sum(c.failed_per_s for c in self.consumers if not c.overdue)

    @property
    def live_consumers(self) -> int:
        return sum(not c.overdue for c in self.consumers)

    @property
    def silent_consumers(self) -> int:
        return sum(c.state == SILENT for c in self.consumers)

    def to_json(self) -> dict[str, Any]:
        """The queue object of ``orizuru stats --json`` and the dashboard's API."""
        doc = attrs.asdict(self, recurse=False)
        doc["consumers"] = [c.to_json() for c in self.consumers]
        doc.update(
            in_flight=self.in_flight,
            acked_per_s=self.acked_per_s,
            failed_per_s=self.failed_per_s,
            live_consumers=self.live_consumers,
            silent_consumers=self.silent_consumers,
        )
        return doc


def _lengths(k: QueueKeys) -> list[scripts.Command]:
    """How many wait, are delayed, are unacked and are dead (in that order)."""
    return [("LLEN", k.queue), ("ZCARD", k.delayed), ("LLEN", k.unack), ("LLEN", k.dead)]


async def stats(queues: Sequence[QueueKeys]) -> list[QueueStats]:
    """The stats of ``queues``: one round trip for their keys, one for the consumers'
    lists. The next message's age comes from its first bytes, never the whole message."""
    calls: list[scripts.Command] = [("TIME",)]
    for k in queues:
        calls += [
            *_lengths(k),
            ("EXISTS", k.paused),
            ("HGETALL", k.counts),
            ("ZRANGE", k.consumers, 0, -1, "WITHSCORES"),
            ("HGETALL", k.info),
            scripts.peek(k.queue, "list", 0, 1, 16, 1),
            ("HSCAN", k.throttled, 0, "COUNT", THROTTLED_SHOWN),
        ]
    replies = await scripts.batch(calls)
    for i in range(len(queues)):  # a foreign value there hides the limiters, nothing more
        if isinstance(replies[10 + 10 * i], Exception):
            replies[10 + 10 * i] = []
    raise_any(replies)
    seconds, micros = replies[0]
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    per = [replies[1 + 10 * i : 11 + 10 * i] for i in range(len(queues))]
    lengths: list[tuple[Any, ...]] = []
    for k, reply in zip(queues, per, strict=True):
        reply[6] = pairs(reply[6])
        for member, _ in reply[6]:
            lengths += [("LLEN", key) for key in k.of_member(member)]
    held = iter(raise_any(await scripts.batch(lengths)) if lengths else [])
    return [_queue_stats(k, reply, now_ms, held) for k, reply in zip(queues, per, strict=True)]


def _queue_stats(k: QueueKeys, reply: list[Any], now_ms: int, held: Iterator[int]) -> QueueStats:
    waiting, delayed, unacked, dead, paused, counts, members, info, oldest, scan = reply
    counts = {key.decode(errors="replace"): _int(v) for key, v in counts.items()}
    consumers = [
        _consumer(member, deadline, published(info.get(member)), now_ms, held)
        for member, deadline in members
    ]
    pushed = enqueued_ms(bytes(oldest[1][1])) if len(oldest) > 1 else None
    return QueueStats(
        queue=k.name,
        waiting=max(0, waiting - counts.get("tombstones:queue", 0)),  # deleted ones' marks
        delayed=delayed,
        unacked=max(0, unacked - counts.get("tombstones:unack", 0)),
        dead=max(0, dead - counts.get("tombstones:dead", 0)),
        expired=counts.get("expired", 0),
        cancelled=counts.get("cancelled", 0),
        paused=bool(paused),
        oldest_waiting_s=None if pushed is None else max(0.0, (now_ms - pushed) / 1000),
        reaped=counts.get("reaped", 0),
        recovered=counts.get("recovered", 0),
        consumers=consumers,
        throttled=_throttled(scan, now_ms),
    )


def _throttled(scan: list[Any], now_ms: int) -> dict[str, float]:
    """HSCAN's reply on the throttled hash: the limiters that free in the future."""
    fields = scan[1] if len(scan) == 2 else []
    if isinstance(fields, dict):
        fields = [x for pair in fields.items() for x in pair]
    until: dict[str, float] = {}
    for name, frees in zip(fields[::2], fields[1::2], strict=False):
        left = (_int(frees) - now_ms) / 1000
        if left > 0 and len(until) < THROTTLED_SHOWN:
            until[bytes(name).decode(errors="replace")] = left
    return until


def _consumer(
    member: bytes, deadline: float, info: dict[str, Any], now_ms: int, held: Iterator[int]
) -> ConsumerStats:
    timeout_ms = _int(info.get("timeout_ms"))
    last_beat = (now_ms - (deadline - timeout_ms)) / 1000 if timeout_ms > 0 else 0.0
    started_ms = _int(info.get("started_ms"))
    return ConsumerStats(
        name=member.decode(errors="replace"),
        held=next(held) + next(held),
        last_beat_s=max(0.0, _float(last_beat)),
        overdue=deadline < now_ms,
        handled=_int(info.get("handled")),
        failed=_int(info.get("failed")),
        acked_per_s=_float(info.get("acked_per_s")),
        failed_per_s=_float(info.get("failed_per_s")),
        host=_str(info.get("host")),
        pid=_int(info.get("pid")),
        uptime_s=max(0.0, (time.time() * 1000 - started_ms) / 1000) if started_ms else 0.0,
        timeout_s=max(0, timeout_ms) / 1000,
    )


def _float(value: object) -> float:
    """A finite number, else 0.0 (a record may hold anything: inf, "abc", [1])."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if math.isfinite(value) else 0.0


def _int(value: object) -> int:
    """An integer within 64 bits, else 0 (counts arrive as int or bytes)."""
    if isinstance(value, bytes):
        try:
            value = int(value)
        except ValueError:
            return 0
    number = _float(value)
    return int(number) if abs(number) < 2**63 else 0


def _str(value: object) -> str:
    return value[:255] if isinstance(value, str) else ""


def pairs(reply: list[Any]) -> list[tuple[bytes, float]]:
    """ZRANGE ... WITHSCORES as (member, score) pairs, however the client parsed it."""
    if reply and isinstance(reply[0], list | tuple):
        return [(m, float(score)) for m, score in reply]
    return [(m, float(score)) for m, score in zip(reply[::2], reply[1::2], strict=True)]


def published(blob: bytes | None) -> dict[str, Any]:
    """What a consumer published with its beat ({} if nothing, or not readable)."""
    if not blob:
        return {}
    try:
        value = msgpack.unpackb(blob, raw=False)
    except Exception:
        return {}
    return value if isinstance(value, dict) else {}


async def sizes(queues: Sequence[QueueKeys]) -> dict[str, dict[str, int]]:
    """Each queue's waiting, delayed, unacked and dead counts and its live consumers, in
    one round trip: what the Prometheus collector reads at every scrape."""
    calls: list[scripts.Command] = [("TIME",)]
    for k in queues:
        calls += [*_lengths(k), ("ZRANGE", k.consumers, 0, -1, "WITHSCORES")]
    replies = raise_any(await scripts.batch(calls))
    seconds, micros = replies[0]
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    sizes = {}
    for i, k in enumerate(queues):
        waiting, delayed, unacked, dead, members = replies[1 + 5 * i : 6 + 5 * i]
        live = sum(deadline >= now_ms for _, deadline in pairs(members))
        sizes[k.name] = {
            "waiting": waiting,
            "delayed": delayed,
            "unacked": unacked,
            "dead": dead,
            "consumers": live,
        }
    return sizes
