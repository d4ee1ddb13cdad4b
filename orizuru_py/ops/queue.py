"""Queue: one handle for operators: counts, consumers, messages, and what to do with them.

Never on a message's path: a producer or consumer does not need it. Every read is
bounded (pages, a fixed number of round trips per call), so the CLI, ``top`` and
the dashboard can look at a queue of millions without stalling the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import scripts
from ..codecs import Codec, MsgpackCodec
from ..keys import QueueKeys, registry
from ..plan import Batch, Call, Driver, Plan, blocking, raise_any, script
from .peeking import MAX_PEEK, PEEK_BYTES, WHERE, Peeked, check_peek, peek
from .stats import ConsumerStats, QueueStats, stats

__all__ = ["MAX_PEEK", "WHERE", "ConsumerStats", "Peeked", "Queue", "QueueStats", "Revived"]

_PAGE = 1000  # elements looked at per script call when searching


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
        return Driver(r).run(stats([QueueKeys(n, prefix) for n in names]))

    def stats(self) -> QueueStats:
        """Counts, consumers (with what each published), GC totals: two round trips."""
        return self._driver.run(stats([self.keys]))[0]

    def peek(
        self,
        n: int = 10,
        where: str = "waiting",
        offset: int = 0,
        max_bytes: int | None = PEEK_BYTES,
    ) -> list[Peeked]:
        """Up to ``n`` messages of a list, unmoved, in the order they will be acted on:
        waiting (next up first), delayed (soonest first), unacked (next returned first),
        dead (oldest first); ``offset`` skips that many. Of each payload only the first
        ``max_bytes`` are read (None: all): a longer one comes back ``truncated``."""
        check_peek(n, where, offset, max_bytes)
        return self._driver.run(peek(self.keys, n, where, offset, max_bytes, self.codec))

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
            n, g = self._driver.run(script(scripts.REVIVE, (k.dead, k.queue), (limit,)))
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

    def _cancel(self, message_id: str) -> Plan[bool]:
        """Make sure a waiting or delayed message is never delivered: True. A message in
        a handler is not interrupted (False), but its guard's ``cancelled`` turns True."""
        return (yield from _cancel(self, message_id))

    cancel = blocking(_cancel)

    def _find(self, key: str, kind: str, message_id: str, action: str) -> int | None:
        return self._driver.run(_find(self.keys, key, kind, _check_id(message_id), action))


def _check_id(message_id: object) -> str:
    if not isinstance(message_id, str) or not message_id or len(message_id) > 255:
        raise ValueError(f"a message id is a non-empty str, got {message_id!r}")
    return message_id


def _batch(calls: Sequence[tuple[Any, ...]], transaction: bool = False) -> Plan[list[Any]]:
    replies: list[Any] = yield Batch(tuple(calls), transaction)
    return replies


def _find(
    keys: QueueKeys, key: str | bytes, kind: str, message_id: str, action: str
) -> Plan[int | None]:
    """Search ``key`` a page per call for ``message_id`` and act on it; its index or None."""
    k = keys
    script_keys = (key, k.queue, k.cancel, k.unique, k.unique_expiry, k.counts)
    start = 0
    while start != -1:
        index, _, start = yield from script(
            scripts.FIND, script_keys, (kind, message_id, start, _PAGE, action)
        )
        if index != -1:
            return int(index)
    return None


def _cancel(q: Queue, message_id: str) -> Plan[bool]:
    """Mark, then look where a message can wait (delayed, unacked, waiting: in the order
    messages flow, so a move during the search cannot carry it past), then in the
    consumers' hands. Every take that meets the mark meanwhile drops it."""
    message_id = _check_id(message_id)
    k = q.keys
    mark = yield from script(scripts.CANCEL_MARK, (k.cancel,), (message_id,))
    state = mark.decode() if isinstance(mark, bytes) else str(mark)
    if state in ("p", "d"):
        return True
    if state == "f":
        return False
    for key, kind in ((k.delayed, "zset"), (k.unack, "list"), (k.queue, "list")):
        if (yield from _find(k, key, kind, message_id, "cancel")) is not None:
            return True
    seen = ""
    for member in (yield Call(("ZRANGE", k.consumers, 0, -1))):
        processing, prefetch = k.of_member(member)
        for held, where in ((processing, "processing"), (prefetch, "prefetch")):
            if (yield from _find(k, held, "list", message_id, "find")) is not None:
                seen = where
                break
        if seen:
            break
    return bool((yield from script(scripts.CANCEL_END, (k.cancel,), (message_id, seen))))
