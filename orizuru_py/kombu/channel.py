"""The kombu channel and QoS of the orizuru transport.

Built on kombu's Redis channel for what it does well (exchanges and bindings kept in
Redis, fanout over pub/sub, the event loop); every queue operation is ours. A kombu
message (body, headers, properties) travels as JSON in one orizuru message, in the
orizuru queue of its kombu queue and priority step. ``basic_ack`` is the guard's ack,
``basic_reject(requeue=True)`` returns the message with this delivery counted (and
dead-letters it at ``max_attempts``), ``requeue=False`` dead-letters it, and closing
the channel hands back what it took and never saw acked, uncounted.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from uuid import uuid4

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.json import dumps, loads

from .. import MessageGuard, Queue
from .taker import MAX_TAKE, Lists, Options, Taken, Taker, check_queue_name, hand_back_uncounted
from .taker import list_name as _list_name

log = logging.getLogger("orizuru_py.kombu")

# A blocking take must end well within the client's socket timeout (redis-py would
# retry it silently): consumers block at most half of it.
DEFAULT_SOCKET_TIMEOUT = 10.0


class QoS(virtual.QoS):  # type: ignore[misc]
    """Prefetch accounting as kombu's, settlements as orizuru's: no visibility timeout,
    no unacked hash; a delivered message sits in this worker's processing list."""

    channel: Channel

    def ack(self, delivery_tag: str) -> None:
        guard = self.channel.guards.get(delivery_tag)
        if guard is not None:
            guard.ack()
        self.channel.settled(delivery_tag)
        super().ack(delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        guard = self.channel.guards.get(delivery_tag)
        if guard is not None:
            self.channel.settle_rejected(guard, requeue)
        self.channel.settled(delivery_tag)
        super().ack(delivery_tag)  # kombu's reject would restore the message itself

    def restore_unacked(self) -> list[tuple[BaseException, Any]]:
        """Hand every delivered, unacked message back to the front of its queue, uncounted.
        If Redis cannot be reached they stay in this worker's lists, and the GC returns
        them once its heartbeat deadline passes."""
        self._flush()
        tags = list(self._delivered)
        self._delivered.clear()
        guards = [g for t in tags if (g := self.channel.guards.pop(t, None)) is not None]
        try:
            self.channel.hand_back(guards)
        except Exception as exc:
            log.warning("could not hand back %d unacked message(s): %s", len(guards), exc)
        self.channel.taker.wake()
        return []

    def restore_visible(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to do: no message waits for a visibility timeout here."""


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    """A kombu virtual channel whose queues are orizuru queues."""

    QoS = QoS
    supports_batch_publish = False
    from_transport_options = (
        *kombu_redis.Channel.from_transport_options,
        "heartbeat_timeout",
        "max_attempts",
        "gc_interval",
        "prefix",
        "max_payload_bytes",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._pid = os.getpid()
        self.guards: dict[str, MessageGuard] = {}
        self._no_ack: set[str] = set()
        super().__init__(*args, **kwargs)
        self.options = Options.of(self.connection.client.transport_options)
        self.lists = Lists(self._orizuru_client(), self.options)
        self.taker = Taker(self.lists, self.priority_steps, lambda: self.active_queues,
                           self._room, self._decode)  # fmt: skip
        self.handlers["TAKE"] = self.deliver_taken

    # -- the client ------------------------------------------------------------------

    def _orizuru_client(self) -> redis.Redis:
        """A client of our own on the transport's connection parameters, with socket
        timeouts (kombu leaves them unset: a dead server would hang a take forever)."""
        params = self._connparams()
        params.pop("max_connections", None)
        for option in ("socket_timeout", "socket_connect_timeout"):
            if params.get(option) is None:
                params[option] = DEFAULT_SOCKET_TIMEOUT
        return redis.Redis(connection_pool=redis.ConnectionPool(**params))

    # -- publishing ------------------------------------------------------------------

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        step = self.priority(self._get_message_priority(message, reverse=False))
        ttl = message.get("properties", {}).get("expiration")
        producer = self.lists.producer(_list_name(queue, step))
        producer.push(dumps(message).encode(), ttl=int(ttl) / 1000 if ttl else None)
        if queue in self._expires:
            self.lists.r.pexpire(producer.keys.queue, self._expires[queue])

    def _new_queue(self, queue: str, auto_delete: bool = False, **kwargs: Any) -> None:
        check_queue_name(queue, self.priority_steps)
        super()._new_queue(queue, auto_delete=auto_delete, **kwargs)

    def _names(self, queue: str) -> list[str]:
        return [_list_name(queue, step) for step in self.priority_steps]

    def _size(self, queue: str) -> int:
        return sum(self.lists.waiting(self._names(queue)))

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        keys = [self.lists.key(name) for name in self._names(queue)]
        return bool(self.lists.r.exists(*keys))

    def _purge(self, queue: str) -> int:
        r, prefix = self.lists.r, self.options.prefix
        return sum(Queue(r, name, prefix=prefix).purge() for name in self._names(queue))

    def _delete(self, queue: str, exchange: str, routing_key: str, pattern: str,
                *args: Any, **kwargs: Any) -> None:  # fmt: skip
        """Unbind (kombu's binding tables) and drop the waiting messages."""
        self.auto_delete_queues.discard(queue)
        member = self.sep.join([routing_key or "", pattern or "", queue or ""])
        with self.conn_or_acquire(client=kwargs.get("client")) as client:
            client.srem(self.keyprefix_queue % (exchange,), member)
            client.srem(self.keyprefix_binding_permanent % (exchange,), member)
        self._purge(queue)

    # -- consuming -------------------------------------------------------------------

    def basic_consume(self, queue: str, no_ack: bool, *args: Any, **kwargs: Any) -> Any:
        (self._no_ack.add if no_ack else self._no_ack.discard)(queue)
        out = super().basic_consume(queue, no_ack, *args, **kwargs)
        self.taker.wake()
        return out

    def basic_qos(self, *args: Any, **kwargs: Any) -> None:
        super().basic_qos(*args, **kwargs)
        self.taker.wake()

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        """One message now, or None: strict priority order, never blocking."""
        names = self._names(queue)
        for name, waiting in zip(names, self.lists.waiting(names), strict=True):
            if not waiting:
                continue
            guard = self.lists.consumer(name, owner=False).next(timeout=0)
            payload = self._decode(queue, guard) if guard is not None else None
            if guard is None or payload is None:
                continue
            message = self.Message(self._delivered(queue, guard, payload), channel=self)
            if not no_ack:
                self.qos.append(message, message.delivery_tag)
            return message
        return None

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        raise NotImplementedError("the orizuru channel takes through basic_get and its taker")

    def deliver_taken(self) -> bool:
        """Deliver one message the taker took (the event loop calls this when its pipe is
        readable). One a call, as kombu's Redis transport delivers one per BRPOP."""
        taken = self.taker.pop()
        if taken is None:
            return False
        if taken.queue not in self._active_queues or self.closed:
            self.hand_back([taken.guard])  # cancelled meanwhile: nobody saw it
            return False
        self.connection._deliver(self._delivered(*_fields(taken)), taken.queue)
        return True

    def _delivered(self, queue: str, guard: MessageGuard, payload: dict[str, Any]) -> Any:
        """The payload as delivered: a fresh delivery tag (the guard is found by it), the
        redelivered flag. A no-ack consumer's message is acked here, at delivery."""
        props = payload["properties"]
        tag = props["delivery_tag"] = uuid4().hex
        info = props.setdefault("delivery_info", {})
        info.setdefault("exchange", "")
        info.setdefault("routing_key", queue)
        info["redelivered"] = guard.attempts > 1
        if queue in self._no_ack:
            guard.ack()
        else:
            self.guards[tag] = guard
        return payload

    def _decode(self, queue: str, guard: MessageGuard) -> dict[str, Any] | None:
        """The kombu payload of a guard; None (and dead-lettered, with the reason) for
        anything that is not one: whoever can write to Redis can push garbage."""
        try:
            payload = loads(guard.payload)
            if not isinstance(payload, dict) or not isinstance(payload.get("properties"), dict):
                raise ValueError("not a kombu message (a JSON object with properties)")
        except Exception as exc:
            log.error("queue %s: dead-lettering message %s: %s", queue, guard.id, exc)
            guard.dead_letter(f"not a kombu message: {exc}")
            return None
        return payload

    def _room(self) -> int:
        """How many more messages this channel may take (kombu's prefetch count)."""
        qos = self.qos
        held = len(qos._delivered) - len(qos._dirty)
        return qos.prefetch_count - held if qos.prefetch_count else MAX_TAKE

    # -- settling --------------------------------------------------------------------

    def settled(self, delivery_tag: str) -> None:
        self.guards.pop(delivery_tag, None)
        self.taker.wake()

    def settle_rejected(self, guard: MessageGuard, requeue: bool) -> None:
        """requeue=False: dead-lettered. requeue=True: back to its queue with this
        delivery counted, due at once; dead-lettered at ``max_attempts`` (a task that
        keeps killing its worker under ``task_reject_on_worker_lost``)."""
        limit = self.options.max_attempts
        if not requeue:
            guard.dead_letter("rejected by the consumer (requeue=False)")
        elif limit is not None and guard.attempts >= limit:
            guard.dead_letter(f"rejected with requeue after {guard.attempts} deliveries "
                              f"(max_attempts {limit})")  # fmt: skip
        else:
            guard.retry(0.0)
            self.lists.collect(guard.queue)

    def hand_back(self, guards: list[MessageGuard]) -> None:
        """Back to the front of their queues, uncounted: delivered to no code, or never
        acked by a consumer that is going away gracefully."""
        by_consumer: dict[Any, list[MessageGuard]] = {}
        for guard in guards:
            by_consumer.setdefault(guard.held, []).append(guard)
        for mine in by_consumer.values():
            hand_back_uncounted(mine)
            for guard in mine:
                guard.settled = True

    def _poll_error(self, type: str, **options: Any) -> Any:
        if type != "TAKE":
            return super()._poll_error(type, **options)
        return None

    # -- closing ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop taking, hand back what was taken and not acked (uncounted), deregister.
        In a forked child (a prefork pool process) the parent owns all of it: forget."""
        if self.closed:
            super().close()
            return
        mine = os.getpid() == self._pid
        self.taker.stop()
        taken = self.taker.drain()
        if mine:
            try:
                self.hand_back([t.guard for t in taken])
            except Exception as exc:  # the GC returns them after the heartbeat timeout
                log.warning("could not hand back %d message(s): %s", len(taken), exc)
        else:
            self.do_restore = False
        super().close()
        self.lists.close(hand_back=mine)
        self.taker.close()

    def _after_fork(self) -> None:
        self.do_restore = False
        super()._after_fork()


def _fields(taken: Taken) -> tuple[str, MessageGuard, dict[str, Any]]:
    return taken.queue, taken.guard, taken.payload
