"""Queue for asyncio: the blocking Queue's plans (orizuru_py.queue), awaited."""

from __future__ import annotations

from collections.abc import Sequence

from ..client import Client
from ..plan import awaiting
from ..queue import QueueCore, known, stats_of
from ..stats import QueueStats
from .driver import AsyncDriver


class Queue(QueueCore):
    """An operator's handle on one queue (``await q.stats()``, ``await q.paused``)."""

    driver_class = AsyncDriver
    _driver: AsyncDriver

    stats = awaiting(QueueCore._stats)
    peek = awaiting(QueueCore._peek)
    purge = awaiting(QueueCore._purge)
    requeue_dead = awaiting(QueueCore._requeue_dead)
    requeue_one = awaiting(QueueCore._requeue_one)
    delete = awaiting(QueueCore._delete)
    pause = awaiting(QueueCore._pause)
    resume = awaiting(QueueCore._resume)
    forget = awaiting(QueueCore._forget)
    cancel = awaiting(QueueCore._cancel)

    @staticmethod
    async def all(r: Client, prefix: str = "orizuru") -> list[str]:
        """The known queues: those a producer or consumer has used (a registry, no SCAN)."""
        return await AsyncDriver(r).run(known(prefix))

    @staticmethod
    async def stats_of(
        r: Client, names: Sequence[str], prefix: str = "orizuru"
    ) -> list[QueueStats]:
        """The stats of many queues in two round trips."""
        return await AsyncDriver(r).run(stats_of(names, prefix))
