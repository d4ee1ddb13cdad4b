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
from redis.cluster import RedisCluster
from redis.crc import key_slot

from . import scripts
from .errors import AlreadySettled
from .keys import QueueKeys
from .producer import to_delay_ms

if TYPE_CHECKING:
    from .consumer import Consumer


@attrs.define(eq=False)
class MessageGuard:
    """A message a consumer holds until it is acked, rejected, pushed, retried or dead-lettered."""

    consumer: Consumer = attrs.field(repr=False)
    raw: bytes = attrs.field(repr=False)
    id: str
    payload: Any
    attempts: int
    enqueued_ms: int
    settled: bool = False

    @property
    def queue(self) -> str:
        return self.consumer.keys.name

    def ack(self) -> bool:
        """Remove the message for good. False if it was no longer this consumer's."""
        self._check()
        done = self.consumer.r.execute_command("LREM", self.consumer.processing_key, -1, self.raw)
        return self._settle(done)

    def reject(self) -> bool:
        """Move the message to the unack list; the GC returns it to the queue later."""
        self._check()
        keys = (self.consumer.processing_key, self.consumer.keys.unack)
        return self._settle(scripts.MOVE(self.consumer.r, keys, (self.raw,)))

    def push(self, queue: str) -> bool:
        """Move the message, unchanged, to the back of another queue in one step.

        On Redis Cluster two queues live in different slots, where no step can
        touch both: there it is copied first and then removed, so a crash in
        between duplicates the message but never loses it.
        """
        self._check()
        r = self.consumer.r
        target = QueueKeys(queue, self.consumer.keys.prefix).queue
        source = self.consumer.processing_key
        if isinstance(r, RedisCluster) and key_slot(target.encode()) != key_slot(source.encode()):
            self.consumer.r.execute_command("LPUSH", target, self.raw)
            return self._settle(self.consumer.r.execute_command("LREM", source, -1, self.raw))
        return self._settle(scripts.MOVE(r, (source, target), (self.raw,)))

    def retry(self, delay: float = 0.0) -> bool:
        """Back to this queue after ``delay`` seconds, this delivery counted."""
        self._check()
        keys = (self.consumer.processing_key, self.consumer.keys.delayed)
        return self._settle(scripts.RETRY(self.consumer.r, keys, (self.raw, to_delay_ms(delay))))

    def dead_letter(self, reason: str = "dead-lettered by the application") -> bool:
        """Move the message straight to the dead-letter list, with ``reason``."""
        self._check()
        keys = (self.consumer.processing_key, self.consumer.keys.dead)
        return self._settle(scripts.DEAD_LETTER(self.consumer.r, keys, (str(reason), self.raw)))

    def _check(self) -> None:
        if self.settled:
            raise AlreadySettled(f"message {self.id} was already settled")

    def _settle(self, done: Any) -> bool:
        self.settled = True
        self.consumer.forget(self.raw)
        return bool(done)

    def __enter__(self) -> MessageGuard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """A clean exit acks, an exception rejects and propagates; a settled guard is left alone."""
        if self.settled:
            return
        if exc_type is None:
            self.ack()
        else:
            self.reject()
