"""A channel's taker: the thread that takes messages into its consumers' processing lists.

One orizuru queue per (kombu queue, priority step), taken in strict order: the lowest
step first (kombu's Redis order: priority 0 is taken first), the kombu queues of one
step in turn. Every take is one atomic move into a processing list (``Consumer``), so a
message the worker took is at every instant in Redis, in a list the worker owns; up to
the channel's free prefetch is taken in one step. What is taken waits in the inbox for
the channel's event loop, which a pipe wakes: Celery's loop polls its file descriptor
like a socket. Each consumer beats from its own thread, and a garbage collector runs
per queue, so a blocked event loop never gets a live worker reaped and a dead
worker's messages come back within its ``heartbeat_timeout``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from .. import BytesCodec, Consumer, GarbageCollector, MessageGuard, Producer
from ..chunks import release
from ..keys import QueueKeys, validate_name

log = logging.getLogger("orizuru_py.kombu")

MAX_TAKE = 100  # messages per take, and held undelivered, when prefetch is unlimited


def hand_back_uncounted(guards: Sequence[MessageGuard]) -> None:
    """Hand messages of one consumer back to the front of their queue, uncounted (no code
    saw them). The public API has no such call: ``Consumer.close`` counts a delivery."""
    if guards:
        guards[0]._driver.run(release(guards[0].held, guards))


def _positive(_i: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"transport option {attribute.name} must be positive, got {value!r}")


@attrs.frozen
class Options:
    """The transport options of ours (``broker_transport_options`` in Celery)."""

    heartbeat_timeout: float = attrs.field(default=30.0, validator=_positive)
    max_attempts: int | None = 5
    gc_interval: float = attrs.field(default=5.0, validator=_positive)
    prefix: str = "orizuru"
    max_payload_bytes: int = 1 << 20

    @classmethod
    def of(cls, transport_options: dict[str, Any]) -> Options:
        names = [f.name for f in attrs.fields(cls)]
        return cls(**{n: transport_options[n] for n in names if n in transport_options})


def list_name(queue: str, step: int) -> str:
    """The orizuru queue of kombu queue ``queue``'s messages of priority step ``step``."""
    return queue if step == 0 else f"{queue}:p{step}"


def check_queue_name(queue: str, steps: Sequence[int]) -> None:
    """A clear ValueError for a kombu queue name that cannot name an orizuru queue."""
    validate_name(queue, "kombu queue name")
    QueueKeys(list_name(queue, max(steps)))


@attrs.define(eq=False)
class Taken:
    """A message taken for the event loop: its kombu queue, guard and kombu payload."""

    queue: str
    guard: MessageGuard
    payload: dict[str, Any]


class Lists:
    """The consumers, producers and collectors of a channel's orizuru queues, made on
    first use. ``owner`` consumers belong to the taker thread; the others to the thread
    that calls ``basic_get`` (a Consumer belongs to one thread)."""

    def __init__(self, r: Any, options: Options) -> None:
        self.r, self.options = r, options
        self._consumers: dict[tuple[str, bool], Consumer] = {}
        self._producers: dict[str, Producer] = {}
        self._collectors: dict[str, GarbageCollector] = {}
        self._lock = threading.Lock()

    def consumer(self, name: str, owner: bool = True) -> Consumer:
        found = self._consumers.get((name, owner))
        if found is not None:
            return found
        o = self.options
        consumer = Consumer(self.r, name, heartbeat_timeout=o.heartbeat_timeout,
                            max_attempts=o.max_attempts, codec=BytesCodec(),
                            prefix=o.prefix)  # fmt: skip
        with self._lock:
            self._consumers[(name, owner)] = consumer
            if name not in self._collectors:
                gc = GarbageCollector(self.r, name, max_attempts=o.max_attempts, prefix=o.prefix)
                gc.start(o.gc_interval)
                self._collectors[name] = gc
        return consumer

    def producer(self, name: str) -> Producer:
        found = self._producers.get(name)
        if found is None:
            o = self.options
            found = Producer(self.r, name, codec=BytesCodec(), prefix=o.prefix,
                             max_payload_bytes=o.max_payload_bytes)  # fmt: skip
            self._producers[name] = found
        return found

    def collect(self, name: str) -> None:
        """One garbage-collection pass now (a requeued message is due at once)."""
        o = self.options
        GarbageCollector(self.r, name, max_attempts=o.max_attempts, prefix=o.prefix).collect()

    def key(self, name: str) -> str:
        return QueueKeys(name, self.options.prefix).queue

    def waiting(self, names: Sequence[str]) -> list[int]:
        """How many messages wait in each queue, in one round trip: a take goes only
        where there is something (and a queue never used gets no consumer)."""
        with self.r.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.llen(self.key(name))
            return [int(n) for n in pipe.execute()]

    def close(self, hand_back: bool) -> None:
        """Stop the collectors; with ``hand_back`` close the consumers (deregistered,
        anything unsettled returned); without (a forked child), only forget them."""
        with self._lock:
            consumers, self._consumers = list(self._consumers.values()), {}
            collectors, self._collectors = list(self._collectors.values()), {}
        for gc in collectors:
            gc.stop()
        for consumer in consumers:
            if hand_back:
                try:
                    consumer.close()
                except Exception as exc:  # the GC returns what it held after its deadline
                    log.warning("could not close consumer %s: %s", consumer.id, exc)
            else:
                consumer.stop_heartbeat()


class Taker:
    """A channel's taker thread and inbox. ``room()`` says how many more messages the
    channel may hold; ``decode`` turns a guard into a kombu payload (or dead-letters it
    and returns None)."""

    def __init__(
        self,
        lists: Lists,
        steps: Sequence[int],
        queues: Callable[[], list[str]],
        room: Callable[[], int],
        decode: Callable[[str, MessageGuard], dict[str, Any] | None],
    ) -> None:
        self.lists, self.steps = lists, list(steps)
        self._queues, self._room, self._decode = queues, room, decode
        self.inbox: deque[Taken] = deque()
        self.fd, self._write_fd = os.pipe()
        os.set_blocking(self.fd, False)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._turn = 0
        self.eager = False
        self._asked = self._served = 0  # polls begun; polls a take has answered

    def want(self, eager: bool) -> None:
        """A poll began (where kombu's Redis transport sends its BRPOP): take. Under an
        event loop (``eager``) keep taking while there is room; under ``drain_events``
        one take a poll, so messages are not taken while nobody drains."""
        self.eager = eager
        self._asked += 1
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="orizuru-kombu-taker",
                                            daemon=True)  # fmt: skip
            self._thread.start()
        self._wake.set()

    def wake(self) -> None:
        """Room was freed, or the queues changed: look again now."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def close(self) -> None:
        for fd in (self.fd, self._write_fd):
            os.close(fd)

    def pop(self) -> Taken | None:
        """The next taken message, for the event loop (one byte of the pipe each)."""
        try:
            if not os.read(self.fd, 1):
                return None
        except BlockingIOError:
            return None
        return self.inbox.popleft()

    def drain(self) -> list[Taken]:
        """Everything taken and not delivered (the channel is closing)."""
        out = []
        while (item := self.pop()) is not None:
            out.append(item)
        return out

    def _run(self) -> None:
        while not self._stop.is_set():
            took, asked = None, self._asked
            if asked > self._served or self.eager:
                try:
                    took = self._take_once()
                except Exception as exc:  # Redis away, say: consumers back off themselves
                    log.warning("orizuru kombu taker: %s; trying again", exc)
                    self._stop.wait(1.0)
            if took:
                self._served = asked
            if took is None:
                self._wake.wait(1.0)
                self._wake.clear()

    def _take_once(self) -> int | None:
        """Take from the first non-empty list, in priority order; block on one queue's
        first list when all are empty. Returns how many were taken; None when there was
        no room or no queue."""
        queues = self._queues()
        room = self._room() - len(self.inbox)
        if not queues or room <= 0:
            return None
        self._turn = (self._turn + 1) % len(queues)
        turn = queues[self._turn :] + queues[: self._turn]
        names = [(q, list_name(q, step)) for step in self.steps for q in turn]
        lengths = self.lists.waiting([name for _, name in names])
        for (queue, name), length in zip(names, lengths, strict=True):
            if length:
                guards = self.lists.consumer(name).next_batch(min(room, MAX_TAKE), timeout=0)
                return self._put(queue, guards)
        # All empty: wait on one queue's first list, the others in turn.
        queue, name = names[0]
        block = max(0.05, 1.0 / len(queues))
        guard = self.lists.consumer(name).next(timeout=block)
        return self._put(queue, [guard] if guard is not None else [])

    def _put(self, queue: str, guards: Iterable[MessageGuard]) -> int:
        n = 0
        for guard in guards:
            payload = self._decode(queue, guard)
            if payload is None:
                continue
            self.inbox.append(Taken(queue, guard, payload))
            os.write(self._write_fd, b"x")
            n += 1
        return n
