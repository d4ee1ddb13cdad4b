"""Queue: one handle on a queue for inspecting and controlling it.

Counts and consumers (``stats``), messages unmoved (``peek``), and what an operator
does with them: purge, requeue dead letters, delete, cancel, pause and resume.
Never on a message's path: a producer or consumer does not need it. Every read is
bounded (pages, a fixed number of round trips per call), so the CLI, ``top`` and
the dashboard can look at a queue of millions without stalling the server. Every
method is a plan, so ``orizuru_py.asyncio.Queue`` awaits the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import checks, scripts
from .client import Client
from .codecs import Codec, MsgpackCodec
from .keys import QueueKeys, registry
from .peeking import PEEK_BYTES, WHERE, Peeked, check_peek, peek
from .plan import Batch, Call, Driver, blocking, raise_any
from .producer import DEFAULT_UNIQUE_FOR
from .stats import QueueStats, stats

_PAGE = 1000  # elements looked at per script call when searching
_UNIQUE_FOR_MS = int(DEFAULT_UNIQUE_FOR * 1000)  # a revived dead letter's hold on its key


class Revived(int):
    """How many dead letters went back to the queue; ``garbage``: records left dead
    because their bytes are not a message; ``held``: left dead because another live
    message holds their unique key now (reviving them would break its uniqueness)."""

    garbage: int
    held: int

    def __new__(cls, revived: int, garbage: int, held: int = 0) -> Revived:
        self = super().__new__(cls, revived)
        self.garbage, self.held = garbage, held
        return self


class QueueCore:
    """What an operator's handle decides; ``Queue`` and the asyncio one do the I/O."""

    driver_class: type[Any] = Driver

    def __init__(
        self, r: Client, name: str, *, prefix: str = "orizuru", codec: Codec | None = None
    ) -> None:
        self.keys = QueueKeys(name, prefix)
        self.r = r
        self.codec = codec or MsgpackCodec()
        self._driver = self.driver_class(r)

    @property
    def name(self) -> str:
        return self.keys.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, prefix={self.keys.prefix!r})"

    @property
    def paused(self) -> Any:
        """Whether the queue is paused (asyncio: ``await q.paused``)."""
        return self._driver.run(self._paused())

    async def _paused(self) -> bool:
        return bool(await Call(("EXISTS", self.keys.paused)))

    async def _stats(self) -> QueueStats:
        """Counts, consumers (with what each published), GC totals: two round trips."""
        return (await stats([self.keys]))[0]

    async def _peek(
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
        return await peek(self.keys, n, where, offset, max_bytes, self.codec)

    async def _purge(self, dead: bool = False) -> int:
        """Delete the waiting, delayed and rejected messages (and the dead ones with
        ``dead``), and forget every unique key. In-flight messages are left to their
        consumers. Returns how many messages were deleted."""
        k = self.keys
        lists = [k.queue, k.unack] + ([k.dead] if dead else [])
        roles = ["tombstones:queue", "tombstones:unack"] + (["tombstones:dead"] if dead else [])
        sizes = [("LLEN", key) for key in lists] + [("ZCARD", k.delayed)]
        tombs = [("HGET", k.counts, role) for role in roles]
        deletes = (("UNLINK", *lists, k.delayed, k.unique, k.unique_expiry),
                   ("HDEL", k.counts, *roles))  # fmt: skip
        replies = raise_any(await Batch((*sizes, *tombs, *deletes), transaction=True))
        found = sum(replies[: len(sizes)]) - sum(int(t or 0) for t in replies[len(sizes) : -2])
        return int(found)

    async def _requeue_dead(self) -> Revived:
        """Move every dead letter back to the queue with a fresh attempt count, taking its
        unique key again (for ``DEFAULT_UNIQUE_FOR``), in bounded steps; records whose
        bytes are not a message stay dead (``.garbage``), and so do messages whose unique
        key another live message holds now (``.held``)."""
        k = self.keys
        total = await Call(("LLEN", k.dead))
        revived = garbage = held = 0
        while revived + garbage + held < total:  # each record examined once
            limit = min(_PAGE, total - revived - garbage - held)
            n, g, h = await scripts.revive(k, limit, _UNIQUE_FOR_MS).run()
            revived, garbage, held = revived + n, garbage + g, held + h
            if n + g + h < limit:
                break
        return Revived(revived, garbage, held)

    async def _requeue_one(self, message_id: str) -> bool:
        """Move one dead letter back to the queue with a fresh attempt count, taking its
        unique key again; False if it is not there or another live message holds its key."""
        return await self._find(self.keys.dead, "dead", message_id, "revive") is not None

    async def _delete(self, message_id: str, where: str = "waiting") -> bool:
        """Delete one waiting, delayed, unacked or dead message; False if not there."""
        if where not in WHERE:
            raise ValueError(f"where must be one of {', '.join(WHERE)}, got {where!r}")
        key, kind = self._lists[where]
        return await self._find(key, kind, message_id, "delete") is not None

    async def _pause(self) -> None:
        """Take nothing from this queue, from every consumer's next block time on; pushes
        still land, in-flight messages finish, the GC still recovers into it."""
        await Call(("SET", self.keys.paused, b"1"))

    async def _resume(self) -> None:
        await Call(("DEL", self.keys.paused))

    async def _forget(self) -> None:
        """Drop the queue from the registry (``Queue.all``); its keys are left alone."""
        await Call(("SREM", self.keys.registry, self.name))

    async def _cancel(self, message_id: str) -> bool:
        """Make sure a waiting or delayed message is never delivered: True. A message in a
        handler is not interrupted (False), but its guard's ``cancelled`` turns True.

        Mark, then look where a message can wait (delayed, unacked, waiting: in the order
        messages flow, so a move during the search cannot carry it past), then in the
        consumers' hands. Every take that meets the mark meanwhile drops it."""
        message_id = checks.message_id(message_id)
        k = self.keys
        mark = await scripts.cancel_mark(k, message_id).run()
        state = mark.decode() if isinstance(mark, bytes) else str(mark)
        if state in ("p", "d"):
            return True
        if state == "f":
            return False
        for key, kind in ((k.delayed, "zset"), (k.unack, "list"), (k.queue, "list")):
            if await self._find(key, kind, message_id, "cancel") is not None:
                return True
        seen = ""
        for member in await Call(("ZRANGE", k.consumers, 0, -1)):
            processing, prefetch = k.of_member(member)
            for held, where in ((processing, "processing"), (prefetch, "prefetch")):
                if await self._find(held, "list", message_id, "find") is not None:
                    seen = where
                    break
            if seen:
                break
        return bool(await scripts.cancel_end(k, message_id, seen).run())

    @property
    def _lists(self) -> dict[str, tuple[str, str]]:
        k = self.keys
        return {
            "waiting": (k.queue, "list"),
            "delayed": (k.delayed, "zset"),
            "unacked": (k.unack, "list"),
            "dead": (k.dead, "dead"),
        }

    async def _find(self, key: str | bytes, kind: str, message_id: str, action: str) -> int | None:
        """Search ``key`` a page per call for ``message_id`` and act on it; its index or
        None (also for a dead letter not revived: another live message holds its key)."""
        message_id = checks.message_id(message_id)
        k, start = self.keys, 0
        role = {k.queue: "queue", k.unack: "unack", k.dead: "dead"}.get(str(key), "")
        while start != -1:
            step = scripts.find(
                k, key, kind, message_id, start, _PAGE, action, role, _UNIQUE_FOR_MS
            )
            index, _, start = await step.run()
            if index >= 0:
                return int(index)
            if index == -2:
                return None
        return None


async def known(prefix: str) -> list[str]:
    """The names in the registry: queues a producer or consumer has used (no SCAN)."""
    members = await Call(("SMEMBERS", registry(prefix)))
    return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)


async def stats_of(names: Sequence[str], prefix: str) -> list[QueueStats]:
    return await stats([QueueKeys(n, prefix) for n in names])


class Queue(QueueCore):
    """An operator's handle on one queue (the blocking API)."""

    _driver: Driver

    stats = blocking(QueueCore._stats)
    peek = blocking(QueueCore._peek)
    purge = blocking(QueueCore._purge)
    requeue_dead = blocking(QueueCore._requeue_dead)
    requeue_one = blocking(QueueCore._requeue_one)
    delete = blocking(QueueCore._delete)
    pause = blocking(QueueCore._pause)
    resume = blocking(QueueCore._resume)
    forget = blocking(QueueCore._forget)
    cancel = blocking(QueueCore._cancel)

    @staticmethod
    def all(r: Client, prefix: str = "orizuru") -> list[str]:
        """The known queues: those a producer or consumer has used (a registry, no SCAN)."""
        return Driver(r).run(known(prefix))

    @staticmethod
    def stats_of(r: Client, names: Sequence[str], prefix: str = "orizuru") -> list[QueueStats]:
        """The stats of many queues in two round trips (the dashboard's overview)."""
        return Driver(r).run(stats_of(names, prefix))
