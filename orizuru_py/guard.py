"""MessageGuard: one delivered message, and the ways to settle it.

Every settlement is one atomic Redis step that first removes the message from
the consumer's processing list and does nothing more if it is no longer there
(the GC recovered it), so a recovered message is never copied. A step that
fails on the connection raises and leaves the guard unsettled: the message is
still safe in the processing list and the call can be repeated.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

import attrs
from redis.crc import key_slot

from . import scripts
from .envelope import packed_ids
from .errors import AlreadySettled
from .keys import QueueKeys
from .plan import Call, Plan, batch, blocking, raise_any, script
from .producer import to_delay_ms

if TYPE_CHECKING:
    from .consumer import ConsumerCore


@attrs.define(eq=False, slots=True)
class GuardCore:
    """A message a consumer holds until it is acked, rejected, pushed, retried or
    dead-lettered; the settling rules, shared by the blocking and the asyncio guard."""

    consumer: ConsumerCore[Any] = attrs.field(repr=False)
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
        return self.consumer.keys.name

    @property
    def cancelled(self) -> bool:
        """True once the message was cancelled (``Queue.cancel``) while in flight: the
        handler is not interrupted, but may check this and stop early. Seen with the
        consumer's heartbeat, within half a second or so."""
        return self.id in self.consumer.cancelled_ids

    @property
    def _driver(self) -> Any:
        return self.consumer._driver

    def _ack(self) -> Plan[bool]:
        """Remove the message for good. False if it was no longer this consumer's."""
        self._check()
        c = self.consumer
        if self.unique_key is None and not c.cancels_pending:
            done = yield Call(("LREM", c.processing_key, -1, self.raw))
        else:
            done = yield from script(scripts.ACK, c.ack_keys, c.ack_args([self]))
        return self._settle(done == 1, handled=True)

    def _reject(self) -> Plan[bool]:
        """Move the message to the unack list; the GC returns it to the queue later,
        this delivery counted."""
        self._check()
        c = self.consumer
        keys = (c.processing_key, c.keys.unack, c.keys.unique, c.keys.unique_expiry)
        argv = (packed_ids([self.raw]), "0")
        return self._settle((yield from script(scripts.MOVE, keys, argv)), handled=False)

    def _push(self, queue: str) -> Plan[bool]:
        """Move the message, unchanged, to the back of another queue in one step.

        On Redis Cluster two queues live in different slots, where no step can
        touch both: there it is copied first and then removed, so a crash in
        between duplicates the message but never loses it.
        """
        self._check()
        c = self.consumer
        target = QueueKeys(queue, c.keys.prefix)
        source = c.processing_key
        register = c.registering(target)
        if c.cluster and key_slot(target.queue.encode()) != key_slot(source.encode()):
            raise_any((yield from batch([*register, ("LPUSH", target.queue, self.raw)])))
            done = yield from script(scripts.ACK, c.ack_keys, c.ack_args([self]))
            done = done == 1
        else:
            keys = (source, target.queue, c.keys.unique, c.keys.unique_expiry)
            move = scripts.MOVE.args(keys, (packed_ids([self.raw]), "1"))
            done = raise_any((yield from batch([*register, move], [scripts.MOVE])))[-1]
        c.registered(target)
        return self._settle(done, handled=True)

    def _retry(self, delay: float = 0.0) -> Plan[bool]:
        """Back to this queue after ``delay`` seconds, this delivery counted."""
        self._check()
        c = self.consumer
        argv = (packed_ids([self.raw]), to_delay_ms(delay))
        done = yield from script(scripts.RETRY, (c.processing_key, c.keys.delayed), argv)
        return self._settle(done, handled=False)

    def _dead_letter(self, reason: str = "dead-lettered by the application") -> Plan[bool]:
        """Move the message straight to the dead-letter list, with ``reason``."""
        self._check()
        c = self.consumer
        argv = (str(reason), "ids", packed_ids([self.raw]))
        done = yield from script(scripts.DEAD_LETTER, c.dead_letter_keys, argv)
        return self._settle(done, handled=False)

    def _check(self) -> None:
        if self.settled:
            raise AlreadySettled(f"message {self.id} was already settled")

    def _settle(self, done: Any, *, handled: bool) -> bool:
        self.settled = True
        self.consumer.forget([self.raw], handled=handled)
        return bool(done)


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
