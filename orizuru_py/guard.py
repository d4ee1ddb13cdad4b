"""MessageGuard: one delivered message, and the ways to settle it.

Every settlement is one atomic Redis step that first removes the message from
the consumer's processing list and does nothing more if it is no longer there
(the GC recovered it), so a recovered message is never copied. A step that
fails on the connection raises and leaves the guard unsettled: the message is
still safe in the processing list and the call can be repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import attrs
from redis.crc import key_slot

from . import checks, scripts
from .errors import AlreadySettled
from .held import Held
from .keys import QueueKeys
from .plan import Call, Runs, blocking, raise_any


@attrs.define(eq=False, slots=True)
class GuardCore:
    """A message a consumer holds until it is acked, rejected, pushed, retried or
    dead-lettered; the settling rules, shared by the blocking and the asyncio guard."""

    held: Held = attrs.field(repr=False)
    _driver: Runs = attrs.field(repr=False)
    raw: bytes = attrs.field(repr=False)
    id: str
    payload: Any
    attempts: int
    enqueued_ms: int
    unique_key: str | None = None
    settled: bool = False
    started: bool = False  # a worker's: taken straight into the processing list

    @property
    def queue(self) -> str:
        return self.held.keys.name

    @property
    def cancelled(self) -> bool:
        """True once the message was cancelled (``Queue.cancel``) while in flight: the
        handler is not interrupted, but may check this and stop early. Seen with the
        consumer's heartbeat, within half a second or so."""
        return self.id in self.held.cancelled

    async def _ack(self) -> bool:
        """Remove the message for good. False if it was no longer this consumer's."""
        self._check()
        h = self.held
        if self.unique_key is None and not h.cancels_pending:
            done = await Call(("LREM", h.processing, -1, self.raw))
        else:
            done = await ack_call([self]).run()
        return self._settle(done == 1, handled=True)

    async def _reject(self) -> bool:
        """Move the message to the unack list; the GC returns it to the queue later,
        this delivery counted."""
        self._check()
        h = self.held
        done = await scripts.move(h.keys, h.processing, h.keys.unack, self.raw, False).run()
        return self._settle(done, handled=False)

    async def _push(self, queue: str) -> bool:
        """Move the message, unchanged, to the back of another queue in one step.

        On Redis Cluster two queues live in different slots, where no step can
        touch both: there it is copied first and then removed, so a crash in
        between duplicates the message but never loses it.
        """
        self._check()
        h = self.held
        target = QueueKeys(queue, h.keys.prefix)
        register = h.registering(target)
        if h.cluster and key_slot(target.queue.encode()) != key_slot(h.processing.encode()):
            raise_any(await scripts.batch([*register, ("LPUSH", target.queue, self.raw)]))
            done = (await ack_call([self]).run()) == 1
        else:
            move = scripts.move(h.keys, h.processing, target.queue, self.raw, True)
            done = raise_any(await scripts.batch([*register, move]))[-1]
        h.register(target)
        return self._settle(done, handled=True)

    async def _retry(self, delay: float = 0.0) -> bool:
        """Back to this queue after ``delay`` seconds, this delivery counted."""
        self._check()
        h = self.held
        done = await scripts.retry(h.keys, h.processing, self.raw, checks.delay_ms(delay)).run()
        return self._settle(done, handled=False)

    async def _dead_letter(self, reason: str = "dead-lettered by the application") -> bool:
        """Move the message straight to the dead-letter list, with ``reason``."""
        self._check()
        h = self.held
        done = await scripts.dead_letter(h.keys, h.processing, str(reason), [self.raw]).run()
        return self._settle(done, handled=False)

    def _check(self) -> None:
        if self.settled:
            raise AlreadySettled(f"message {self.id} was already settled")

    def _settle(self, done: Any, *, handled: bool) -> bool:
        self.settled = True
        self.held.forget([self.raw], handled=handled)
        return bool(done)


def ack_call(guards: Sequence[GuardCore]) -> scripts.ScriptCall:
    """ack.lua for guards of one consumer: their messages, and which carry a unique key."""
    h = guards[0].held
    unique_at = [i for i, g in enumerate(guards, 1) if g.unique_key is not None]
    return scripts.ack(h.keys, h.processing, [g.raw for g in guards], unique_at)


class MessageGuard(GuardCore):
    """A message a consumer holds (the blocking API). ``with guard:`` acks on a clean exit
    and rejects when the block raises (the exception propagates)."""

    __slots__ = ()

    ack = blocking(GuardCore._ack)
    reject = blocking(GuardCore._reject)
    push = blocking(GuardCore._push)
    retry = blocking(GuardCore._retry)
    dead_letter = blocking(GuardCore._dead_letter)

    def __enter__(self) -> MessageGuard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """A clean exit acks, an exception rejects and propagates; a settled guard is left alone."""
        if not self.settled:
            self.ack() if exc_type is None else self.reject()
