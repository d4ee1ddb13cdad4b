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

from . import checks, scripts, search, tracing
from .errors import AlreadySettled
from .held import Held
from .keys import QueueKeys
from .plan import Batch, Call, Runs, blocking, raise_any
from .search import Step
from .tracing import Tracing


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
    epoch: int = 0  # its consumer's epoch when taken (see Held.fence)
    _span: tuple[Tracing, Any] | None = attrs.field(default=None, init=False, repr=False)

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
        if self.unique_key is None and h.count <= scripts.BUDGET:
            # The hot path: a short list (so an LREM from its oldest end is bounded) and no
            # unique key to free: no script (a script run costs more than the two commands
            # and their round trip). The cancellation mark is forgotten only when the LREM
            # removed the message and the mark says a cancel() found it in flight ("f"): a
            # mark in another state belongs to a cancel() still at work, and a message no
            # longer ours is not ours to forget. A mark turned "f" after the LREM was set
            # by a cancel() that had seen the message before it, as the HGET would too.
            removed, state = raise_any(
                await self._sent(
                    Batch((("LREM", h.processing, -1, self.raw), ("HGET", h.keys.cancel, self.id)))
                )
            )
            if removed == 1 and state is not None and state.startswith(b"f"):
                await self._sent(Call(("HDEL", h.keys.cancel, self.id)))
            return self._settle(removed == 1, handled=True)
        return self._settle(await self._settling(ack_step([self])), handled=True)

    async def _reject(self) -> bool:
        """Move the message to the unack list; the GC returns it to the queue later,
        this delivery counted."""
        self._check()
        h = self.held
        done = await self._settling(
            lambda raws, rotate: scripts.move(
                h.keys, h.processing, h.keys.unack, raws, False, rotate
            )
        )
        return self._settle(done, handled=False)

    async def _push(self, queue: str) -> bool:
        """Move the message, unchanged, to the back of another queue in one step.

        On Redis Cluster two queues live in different slots, where no step can
        touch both: there it is copied first and then removed, so a crash in
        between duplicates the message but never loses it (and it is copied only
        if it is still this consumer's, as far as a bounded look can tell).
        """
        self._check()
        h = self.held
        target = QueueKeys(queue, h.keys.prefix)
        register = h.registering(target)
        if h.cluster and key_slot(target.queue.encode()) != key_slot(h.processing.encode()):
            done = await self._copy_then_ack(target, register)
        else:

            def move(raws: Sequence[bytes], rotate: bool) -> scripts.ScriptCall:
                return scripts.move(h.keys, h.processing, target.queue, raws, True, rotate)

            done = await self._settling(move, first=register)
        h.register(target)
        return self._settle(done, handled=True)

    async def _copy_then_ack(self, target: QueueKeys, register: list[tuple[str, ...]]) -> bool:
        h = self.held
        at, length = raise_any(
            await Batch(
                (
                    ("LPOS", h.processing, self.raw, "RANK", -1, "MAXLEN", scripts.BUDGET),
                    ("LLEN", h.processing),
                )
            )
        )
        if at is None and length <= scripts.BUDGET:  # no longer ours: the GC took it back
            return False
        raise_any(await scripts.batch([*register, ("LPUSH", target.queue, self.raw)]))
        return await self._settling(ack_step([self]))

    async def _retry(self, delay: float = 0.0) -> bool:
        """Back to this queue after ``delay`` seconds, this delivery counted; at the
        consumer's ``max_attempts``th delivery, to the dead-letter list instead (a message
        retried for good is a poison too)."""
        self._check()
        h, delay_ms = self.held, checks.delay_ms(delay)
        if h.max_attempts and self.attempts >= h.max_attempts:
            return await self._dead_letter(f"max attempts reached ({self.attempts} deliveries)")
        done = await self._settling(
            lambda raws, rotate: scripts.retry(h.keys, h.processing, raws, delay_ms, rotate)
        )
        if done and tracing.hook is not None:
            tracing.hook.retried(self, delay_ms / 1000)
        return self._settle(done, handled=False)

    async def _throttled(self, delay: float, limiter: str) -> bool:
        """Back to this queue after ``delay`` seconds, uncounted: its handler was rate
        limited (``RateLimited``). Its limiter ("" the queue's own) lets nothing start
        meanwhile."""
        self._check()
        h, delay_ms = self.held, checks.delay_ms(delay)
        done = await self._settling(
            lambda raws, rotate: scripts.retry(
                h.keys, h.processing, raws, delay_ms, rotate, limiter=limiter
            )
        )
        return self._settle(done, handled=False)

    async def _dead_letter(self, reason: str = "dead-lettered by the application") -> bool:
        """Move the message straight to the dead-letter list, with ``reason``."""
        self._check()
        h, why = self.held, str(reason)
        done = await self._settling(
            lambda raws, rotate: scripts.dead_letter(h.keys, h.processing, why, raws, rotate)
        )
        if done and tracing.hook is not None:
            tracing.hook.dead_lettered(self, why)
        return self._settle(done, handled=False)

    async def _sent(self, request: Batch | Call) -> Any:
        """Send a settling request; cancelled in flight (or interrupted), the message is
        given up (see ``_settling``)."""
        try:
            return await request
        except BaseException as exc:
            if not isinstance(exc, Exception):
                self.held.abandon([self.raw], seen=True)
            raise

    async def _settling(self, step: Step, first: Sequence[scripts.Command] = ()) -> bool:
        """Run a settling script on this message (after ``first`` commands, in the same
        round trip), searching on when it sits deep in the list. Cancelled in flight (or
        interrupted), the message is given up: the consumer's next take returns it,
        counted, if the step did not reach the server."""
        try:
            if first:
                reply = raise_any(await scripts.batch([*first, step([self.raw], False)]))[-1]
                found, looked, length = search.statuses(reply, 1)
                found = await search.go_on(self.held, [self.raw], step, found, looked, length)
            else:
                found = await search.settle(self.held, [self.raw], step)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                self.held.abandon([self.raw], seen=True)
            raise
        return found[0] == 1

    def _entered(self) -> None:
        """Open a process span around a ``with guard:`` block, when tracing."""
        hook = tracing.hook
        if hook is not None:
            self._span = hook, hook.enter(self)

    def _exited(self, exc: BaseException | None) -> None:
        """Close the span ``_entered`` opened, if it did (even if tracing stopped since)."""
        if self._span is not None:
            (hook, opened), self._span = self._span, None
            hook.exit(opened, exc)

    def _check(self) -> None:
        if self.settled:
            raise AlreadySettled(f"message {self.id} was already settled")

    def _settle(self, done: bool, *, handled: bool) -> bool:
        self.settled = True
        self.held.forget([self.raw], handled=handled)
        return done


def ack_step(guards: Sequence[GuardCore]) -> Step:
    """ack.lua for any of these guards of one consumer (each run names which carry a
    unique key among the messages it is given)."""
    h = guards[0].held
    unique = {g.raw for g in guards if g.unique_key is not None}

    def step(raws: Sequence[bytes], rotate: bool) -> scripts.ScriptCall:
        unique_at = [i for i, raw in enumerate(raws, 1) if raw in unique] if unique else []
        return scripts.ack(h.keys, h.processing, raws, unique_at, rotate)

    return step


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
        self._entered()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """A clean exit acks, an exception rejects and propagates; a settled guard is left alone."""
        try:
            if not self.settled:
                self.ack() if exc_type is None else self.reject()
        finally:
            self._exited(exc)
