"""Queue: one handle for operators: counts, consumers, messages, and what to do with them.

Never on a message's path: a producer or consumer does not need it. Every read is
bounded (pages, a fixed number of round trips per call), so the CLI, ``top`` and
the dashboard can look at a queue of millions without stalling the server.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import attrs
import msgpack

from .. import checks, envelope, scripts
from ..codecs import Codec, MsgpackCodec
from ..deadletter import DeadLetter
from ..errors import DecodeError
from ..keys import QueueKeys, registry
from ..plan import Batch, Call, Driver, blocking, raise_any

WHERE = ("waiting", "delayed", "unacked", "dead")
MAX_PEEK = 1000
_PAGE = 1000  # elements looked at per script call when searching


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

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


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

    def to_json(self) -> dict[str, Any]:
        """The queue object of ``orizuru stats --json`` and the dashboard's API."""
        doc = attrs.asdict(self, recurse=False)
        doc["consumers"] = [c.to_json() for c in self.consumers]
        doc.update(
            in_flight=self.in_flight,
            acked_per_s=self.acked_per_s,
            failed_per_s=self.failed_per_s,
            live_consumers=self.live_consumers,
        )
        return doc


@attrs.frozen
class Peeked:
    """A message as ``peek`` shows it; ``error`` says why bytes do not decode."""

    id: str | None
    attempts: int | None
    enqueued_ms: int | None
    payload: Any
    raw: bytes = attrs.field(repr=False)
    error: str | None = None
    reason: str | None = None  # dead letters
    dead_ms: int | None = None
    due_ms: int | None = None  # delayed messages
    unique_key: str | None = None
    expires_ms: int | None = None


class Revived(int):
    """How many dead letters went back to the queue; ``garbage``: records left dead
    because their bytes are not a message."""

    garbage: int

    def __new__(cls, revived: int, garbage: int) -> Revived:
        self = super().__new__(cls, revived)
        self.garbage = garbage
        return self


class Queue:
    """An operator's handle on one queue (the blocking API)."""

    def __init__(
        self, r: Any, name: str, *, prefix: str = "orizuru", codec: Codec | None = None
    ) -> None:
        self.keys = QueueKeys(name, prefix)
        self.r = r
        self.codec = codec or MsgpackCodec()
        self._driver = Driver(r)

    @property
    def name(self) -> str:
        return self.keys.name

    def __repr__(self) -> str:
        return f"Queue({self.name!r}, prefix={self.keys.prefix!r})"

    @staticmethod
    def all(r: Any, prefix: str = "orizuru") -> list[str]:
        """The known queues: those a producer or consumer has used (a registry, no SCAN)."""
        return sorted(
            m.decode() if isinstance(m, bytes) else m for m in r.smembers(registry(prefix))
        )

    @staticmethod
    def stats_of(r: Any, names: Sequence[str], prefix: str = "orizuru") -> list[QueueStats]:
        """The stats of many queues in two round trips (the dashboard's overview)."""
        return Driver(r).run(_stats([QueueKeys(n, prefix) for n in names]))

    def stats(self) -> QueueStats:
        """Counts, consumers (with what each published), GC totals: two round trips."""
        return self._driver.run(_stats([self.keys]))[0]

    def peek(self, n: int = 10, where: str = "waiting", offset: int = 0) -> list[Peeked]:
        """Up to ``n`` messages of a list, unmoved, in the order they will be acted on:
        waiting (next up first), delayed (soonest first), unacked (next returned first),
        dead (oldest first); ``offset`` skips that many."""
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_PEEK:
            raise ValueError(f"n must be an int from 1 to {MAX_PEEK}, got {n!r}")
        if where not in WHERE:
            raise ValueError(f"where must be one of {', '.join(WHERE)}, got {where!r}")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError(f"offset must be an int >= 0, got {offset!r}")
        k = self.keys
        if where == "delayed":
            items = self.r.zrange(k.delayed, offset, offset + n - 1, withscores=True)
            return [self._peeked(raw, due_ms=int(score)) for raw, score in items]
        key = {"waiting": k.queue, "unacked": k.unack, "dead": k.dead}[where]
        raws = self.r.lrange(key, -(offset + n), -(offset + 1))
        return [self._peeked(raw, dead=where == "dead") for raw in reversed(raws)]

    def _peeked(self, raw: bytes, *, dead: bool = False, due_ms: int | None = None) -> Peeked:
        reason = dead_ms = None
        try:
            if dead:
                record = DeadLetter.decode(raw)
                reason, dead_ms, raw = record.reason, record.dead_ms, record.raw
            f = envelope.Envelope.decode(raw)
        except DecodeError as exc:
            return Peeked(None, None, None, None, raw, exc.reason, reason, dead_ms, due_ms)
        try:
            payload = self.codec.decode(f.payload)
        except Exception as exc:
            error = f"payload does not decode with {type(self.codec).__name__}: {exc}"
            return Peeked(
                f.id, f.deliveries + 1, f.enqueued_ms, None, raw, error, reason, dead_ms, due_ms
            )
        return Peeked(
            f.id,
            f.deliveries + 1,
            f.enqueued_ms,
            payload,
            raw,
            None,
            reason,
            dead_ms,
            due_ms,
            f.unique_key,
            f.expires_ms,
        )

    def purge(self, dead: bool = False) -> int:
        """Delete the waiting, delayed and rejected messages (and the dead ones with
        ``dead``), and forget every unique key. In-flight messages are left to their
        consumers. Returns how many messages were deleted."""
        k = self.keys
        lists = [k.queue, k.unack] + ([k.dead] if dead else [])
        sizes = [("LLEN", key) for key in lists] + [("ZCARD", k.delayed)]
        deletes = ("UNLINK", *lists, k.delayed, k.unique, k.unique_expiry)
        replies = raise_any(self._driver.run(_batch((*sizes, deletes), transaction=True)))
        return int(sum(replies[:-1]))

    def requeue_dead(self) -> Revived:
        """Move every dead letter back to the queue with a fresh attempt count, in
        bounded steps; records whose bytes are not a message stay dead (``.garbage``)."""
        k = self.keys
        total = self.r.llen(k.dead)
        revived = kept = 0
        while revived + kept < total:
            limit = min(_PAGE, total - revived - kept)
            n, g = self._driver.run(scripts.revive(k, limit).run())
            revived, kept = revived + n, kept + g
            if n + g < limit:
                break
        return Revived(revived, kept)

    def requeue_one(self, message_id: str) -> bool:
        """Move one dead letter back to the queue with a fresh attempt count."""
        return self._find(self.keys.dead, "dead", message_id, "revive") is not None

    def delete(self, message_id: str, where: str = "waiting") -> bool:
        """Delete one waiting, delayed, unacked or dead message; False if not there."""
        if where not in WHERE:
            raise ValueError(f"where must be one of {', '.join(WHERE)}, got {where!r}")
        k = self.keys
        key, kind = {
            "waiting": (k.queue, "list"),
            "delayed": (k.delayed, "zset"),
            "unacked": (k.unack, "list"),
            "dead": (k.dead, "dead"),
        }[where]
        return self._find(key, kind, message_id, "delete") is not None

    def pause(self) -> None:
        """Take nothing from this queue, from every consumer's next block time on; pushes
        still land, in-flight messages finish, the GC still recovers into it."""
        self.r.set(self.keys.paused, b"1")

    def resume(self) -> None:
        self.r.delete(self.keys.paused)

    @property
    def paused(self) -> bool:
        return bool(self.r.exists(self.keys.paused))

    def forget(self) -> None:
        """Drop the queue from the registry (``Queue.all``); its keys are left alone."""
        self.r.srem(self.keys.registry, self.name)

    async def _cancel(self, message_id: str) -> bool:
        """Make sure a waiting or delayed message is never delivered: True. A message in
        a handler is not interrupted (False), but its guard's ``cancelled`` turns True."""
        return await _cancel(self, message_id)

    cancel = blocking(_cancel)

    def _find(self, key: str, kind: str, message_id: str, action: str) -> int | None:
        return self._driver.run(_find(self.keys, key, kind, checks.message_id(message_id), action))


async def _batch(calls: Sequence[tuple[Any, ...]], transaction: bool = False) -> list[Any]:
    replies: list[Any] = await Batch(tuple(calls), transaction)
    return replies


async def _find(
    keys: QueueKeys, key: str | bytes, kind: str, message_id: str, action: str
) -> int | None:
    """Search ``key`` a page per call for ``message_id`` and act on it; its index or None."""
    start = 0
    while start != -1:
        step = scripts.find(keys, key, kind, message_id, start, _PAGE, action)
        index, _, start = await step.run()
        if index != -1:
            return int(index)
    return None


async def _cancel(q: Queue, message_id: str) -> bool:
    """Mark, then look where a message can wait (delayed, unacked, waiting: in the order
    messages flow, so a move during the search cannot carry it past), then in the
    consumers' hands. Every take that meets the mark meanwhile drops it."""
    message_id = checks.message_id(message_id)
    k = q.keys
    mark = await scripts.cancel_mark(k, message_id).run()
    state = mark.decode() if isinstance(mark, bytes) else str(mark)
    if state in ("p", "d"):
        return True
    if state == "f":
        return False
    for key, kind in ((k.delayed, "zset"), (k.unack, "list"), (k.queue, "list")):
        if (await _find(k, key, kind, message_id, "cancel")) is not None:
            return True
    seen = ""
    for member in await Call(("ZRANGE", k.consumers, 0, -1)):
        processing, prefetch = k.of_member(member)
        for held, where in ((processing, "processing"), (prefetch, "prefetch")):
            if (await _find(k, held, "list", message_id, "find")) is not None:
                seen = where
                break
        if seen:
            break
    return bool(await scripts.cancel_end(k, message_id, seen).run())


async def _stats(queues: list[QueueKeys]) -> list[QueueStats]:
    calls: list[tuple[Any, ...]] = [("TIME",)]
    for k in queues:
        calls += [
            ("LLEN", k.queue),
            ("ZCARD", k.delayed),
            ("LLEN", k.unack),
            ("LLEN", k.dead),
            ("EXISTS", k.paused),
            ("HGETALL", k.counts),
            ("ZRANGE", k.consumers, 0, -1, "WITHSCORES"),
            ("HGETALL", k.info),
            ("LINDEX", k.queue, -1),
        ]
    replies = raise_any(await Batch(tuple(calls)))
    seconds, micros = replies[0]
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    per = [replies[1 + 9 * i : 10 + 9 * i] for i in range(len(queues))]
    lengths: list[tuple[Any, ...]] = []
    for k, reply in zip(queues, per, strict=True):
        reply[6] = _pairs(reply[6])
        for member, _ in reply[6]:
            lengths += [("LLEN", key) for key in k.of_member(member)]
    held = iter(raise_any(await Batch(tuple(lengths))) if lengths else [])
    return [_queue_stats(k, reply, now_ms, held) for k, reply in zip(queues, per, strict=True)]


def _queue_stats(k: QueueKeys, reply: list[Any], now_ms: int, held: Any) -> QueueStats:
    waiting, delayed, unacked, dead, paused, counts, members, info, oldest = reply
    counts = {key.decode(): int(v) for key, v in counts.items()}
    consumers = []
    for member, deadline in members:
        published = _published(info.get(member))
        timeout_ms = int(published.get("timeout_ms", 0))
        last_beat = (now_ms - (int(deadline) - timeout_ms)) / 1000 if timeout_ms else 0.0
        consumers.append(
            ConsumerStats(
                name=member.decode(errors="replace"),
                held=next(held) + next(held),
                last_beat_s=max(0.0, last_beat),
                overdue=int(deadline) < now_ms,
                handled=int(published.get("handled", 0)),
                failed=int(published.get("failed", 0)),
                acked_per_s=float(published.get("acked_per_s", 0.0)),
                failed_per_s=float(published.get("failed_per_s", 0.0)),
                host=str(published.get("host", "")),
                pid=int(published.get("pid", 0)),
                uptime_s=max(0.0, (time.time() * 1000 - int(published.get("started_ms", 0))) / 1000)
                if published
                else 0.0,
            )
        )
    age = None
    if oldest is not None:
        try:
            age = max(0.0, (now_ms - envelope.parse(oldest)[1]) / 1000)
        except DecodeError:
            age = None
    return QueueStats(
        queue=k.name,
        waiting=waiting,
        delayed=delayed,
        unacked=unacked,
        dead=dead,
        expired=counts.get("expired", 0),
        cancelled=counts.get("cancelled", 0),
        paused=bool(paused),
        oldest_waiting_s=age,
        reaped=counts.get("reaped", 0),
        recovered=counts.get("recovered", 0),
        consumers=consumers,
    )


def _pairs(reply: list[Any]) -> list[tuple[bytes, float]]:
    """ZRANGE ... WITHSCORES as (member, score) pairs, however the client parsed it."""
    if reply and isinstance(reply[0], list | tuple):
        return [(m, float(score)) for m, score in reply]
    return [(m, float(score)) for m, score in zip(reply[::2], reply[1::2], strict=True)]


def _published(blob: bytes | None) -> dict[str, Any]:
    """What a consumer published with its beat ({} if nothing, or not readable)."""
    if not blob:
        return {}
    try:
        value = msgpack.unpackb(blob, raw=False)
    except Exception:
        return {}
    return value if isinstance(value, dict) else {}


def sizes_of(r: Any, names: Sequence[str], prefix: str = "orizuru") -> dict[str, dict[str, int]]:
    """Each queue's waiting, delayed, unacked and dead counts and its live consumers, in
    one round trip: what the Prometheus collector reads at every scrape."""
    queues = [QueueKeys(n, prefix) for n in names]
    calls: list[tuple[Any, ...]] = [("TIME",)]
    for k in queues:
        calls += [
            ("LLEN", k.queue),
            ("ZCARD", k.delayed),
            ("LLEN", k.unack),
            ("LLEN", k.dead),
            ("ZRANGE", k.consumers, 0, -1, "WITHSCORES"),
        ]
    replies = raise_any(Driver(r).run(_batch(calls)))
    seconds, micros = replies[0]
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    sizes = {}
    for i, k in enumerate(queues):
        waiting, delayed, unacked, dead, members = replies[1 + 5 * i : 6 + 5 * i]
        live = sum(deadline >= now_ms for _, deadline in _pairs(members))
        sizes[k.name] = {
            "waiting": waiting,
            "delayed": delayed,
            "unacked": unacked,
            "dead": dead,
            "consumers": live,
        }
    return sizes
