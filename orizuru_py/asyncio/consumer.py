"""Consumer and MessageGuard for asyncio: the blocking ones' plans (orizuru_py.consumer,
orizuru_py.guard), awaited, with the heartbeat as a task on the same clock."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Coroutine
from types import TracebackType

from ..consumer import ConsumerCore
from ..guard import GuardCore
from ..heartbeat import beat_forever
from ..plan import awaiting
from .driver import AsyncDriver


class MessageGuard(GuardCore):
    """A message a consumer holds. ``async with guard:`` acks on a clean exit and rejects
    when the block raises (the exception propagates)."""

    __slots__ = ()

    ack = awaiting(GuardCore._ack)
    reject = awaiting(GuardCore._reject)
    push = awaiting(GuardCore._push)
    retry = awaiting(GuardCore._retry)
    dead_letter = awaiting(GuardCore._dead_letter)

    async def __aenter__(self) -> MessageGuard:
        self._entered()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """A clean exit acks, an exception rejects and propagates; a settled guard is left alone."""
        try:
            if not self.settled:
                await (self.ack() if exc_type is None else self.reject())
        finally:
            self._exited(exc)


class Consumer(ConsumerCore[MessageGuard]):
    """Takes messages from one queue (``await next()``). Belongs to one task; ``close()``
    may come from any."""

    guard_class = MessageGuard
    driver_class = AsyncDriver
    _driver: AsyncDriver
    _heartbeat: asyncio.Task[None] | None = None

    next = awaiting(ConsumerCore._next)
    next_batch = awaiting(ConsumerCore._next_batch)
    ack_many = awaiting(ConsumerCore._ack_many)

    def close(self) -> Coroutine[None, None, None]:
        """Stop the heartbeat, hand every unsettled message back, deregister (see
        ``ConsumerCore._close``). Ends a ``next()`` awaiting in another task within one
        block time. Takes effect when called: a close cancelled before it began (a task
        or ``wait_for`` around it) still stops the beat and the takes, so what it holds
        goes to the GC, as when a process dies."""
        self._driver.closed.set()
        self._beat_driver.closed.set()
        return self._closing()

    async def _closing(self) -> None:
        await self._stopping()
        await self._driver.run(self._close())

    def stop_heartbeat(self) -> Coroutine[None, None, None]:
        """Stop beating, but hand nothing back: what this consumer holds waits for the GC,
        as if the process had died (a worker stopped at once). Takes effect when called."""
        self._beat_driver.closed.set()
        return self._stopping()

    async def _stopping(self) -> None:
        """Wait for the heartbeat task to see its driver closed and end."""
        beating = self._heartbeat
        me = asyncio.current_task()
        if beating is not None and beating is not me:
            try:
                await beating
            except asyncio.CancelledError:
                if me is not None and me.cancelling():
                    raise  # this task was cancelled, not (only) the heartbeat's

    def _begin_beating(self) -> None:
        plan = beat_forever(weakref.ref(self), self.tick)
        self._heartbeat = asyncio.get_running_loop().create_task(
            self._beat_driver.run(plan), name=f"orizuru-heartbeat-{self.id}"
        )

    async def _messages(self) -> AsyncIterator[MessageGuard]:
        while (guard := await self.next()) is not None:
            yield guard

    def __aiter__(self) -> AsyncIterator[MessageGuard]:
        """Messages as they come, until ``close()``."""
        return self._messages()

    async def __aenter__(self) -> Consumer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
