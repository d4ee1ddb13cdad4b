"""Consumer: take messages from a queue into this consumer's own processing list.

A message is taken by one atomic move (``take.lua``, or ``BLMOVE`` when the
queue is empty), so it is always in a Redis list, never only in this process.
Each take travels with a registration (inside ``take.lua``, or a ZADD pipelined
before the ``BLMOVE``) whose deadline, on the server's clock, outlasts the
block, so a message can only enter the processing list of a consumer the GC
still knows: a consumer frozen past its deadline and reaped registers again
with its next take, and nothing it takes afterwards can be stranded. Each take
also reads the list's length: more than the consumer holds means a reply was
lost, and the orphans are handed back.
"""

from __future__ import annotations

import inspect
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

from redis.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import scripts
from .codecs import Codec, MsgpackCodec
from .envelope import fields
from .errors import AlreadySettled, DecodeError
from .guard import MessageGuard
from .heartbeat import Heartbeat
from .keys import QueueKeys, validate_name

log = logging.getLogger("orizuru_py.consumer")

DEFAULT_HEARTBEAT_TIMEOUT = 30.0
DEFAULT_BLOCK_TIME = 1.0
MAX_BATCH = 10_000
# Errors a consumer rides out with backoff: the server (or every cluster node) is
# unreachable for now. redis-py's "cluster cannot be connected" is no RedisError.
TRANSIENT = (RedisConnectionError, RedisTimeoutError, RedisClusterException)


def default_name() -> str:
    """hostname-pid-random: unique, and tells an operator where a consumer runs."""
    host = "".join(c for c in socket.gethostname() if c.isalnum() or c in "-_.") or "host"
    return f"{host[:64]}-{os.getpid()}-{os.urandom(3).hex()}"


def _connection_options(r: Any) -> tuple[dict[str, Any], type]:
    """The keyword arguments and class the client makes its connections with."""
    for holder in (getattr(r, "connection_pool", None), getattr(r, "nodes_manager", None)):
        kwargs = getattr(holder, "connection_kwargs", None)
        if isinstance(kwargs, dict):
            return kwargs, getattr(holder, "connection_class", Connection)
    return {}, Connection


def socket_timeout(r: Any) -> float | None:
    """The client's socket timeout in seconds (None: none). A client made by ``from_url``
    leaves it out of its kwargs and gets the connection class's default (5 s in redis-py 8)."""
    kwargs, cls = _connection_options(r)
    value = kwargs["socket_timeout"] if "socket_timeout" in kwargs else _default_socket_timeout(cls)
    return float(value) if value is not None else None


def check_client(r: Any) -> None:
    """Refuse a client that would hand us messages as str: they are bytes, exactly."""
    if _connection_options(r)[0].get("decode_responses"):
        raise ValueError(
            "orizuru_py needs a client with decode_responses=False: messages are bytes "
            "and must come back byte for byte"
        )


def check_heartbeat_timeout(value: float) -> None:
    if not 0.2 <= value < 86_400:
        raise ValueError(f"heartbeat_timeout must be from 0.2 s to a day, got {value!r}")


def _default_socket_timeout(cls: type) -> Any:
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        param = inspect.signature(init).parameters.get("socket_timeout")
        if param is not None and param.default is not inspect.Parameter.empty:
            return param.default
    return None


class Consumer:
    """Takes messages from one queue. Belongs to one thread (``close()`` may come from any)."""

    def __init__(
        self,
        r: Any,
        queue: str,
        *,
        name: str | None = None,
        heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
        codec: Codec | None = None,
        prefix: str = "orizuru",
        block_time: float = DEFAULT_BLOCK_TIME,
    ) -> None:
        self.keys = QueueKeys(queue, prefix)
        self.name = validate_name(name if name is not None else default_name(), "consumer name")
        check_heartbeat_timeout(heartbeat_timeout)
        if not block_time > 0:
            raise ValueError(f"block_time must be positive, got {block_time}")
        check_client(r)
        self.r = r
        self.codec = codec or MsgpackCodec()
        self.processing_key = self.keys.processing(self.name)
        self.heartbeat_timeout = heartbeat_timeout
        self._timeout_ms = int(heartbeat_timeout * 1000)
        # A block must end before the registration sent with it expires, and before
        # the client's socket timeout fires (redis-py would retry it silently).
        limits = [block_time, heartbeat_timeout / 2]
        sock = socket_timeout(r)
        if sock is not None:
            limits.append(sock / 2)
        self.block = min(limits)
        self._held: set[bytes] = set()
        self._closed = threading.Event()
        self._take_lock = threading.Lock()
        self._registered = False
        self._reconcile = True  # hand back what a previous consumer of this name left
        self._failures = 0
        self._heartbeat = Heartbeat(
            r,
            self.keys,
            self.name,
            self._timeout_ms,
            min(0.5, heartbeat_timeout / 4),
            self._on_fresh,
        )
        self._heartbeat.beat()
        self._heartbeat.start()

    @property
    def queue(self) -> str:
        return self.keys.name

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def next(self, timeout: float | None = None) -> MessageGuard | None:
        """The next message, or None once ``timeout`` seconds pass (None: wait until one
        comes or the consumer is closed). Connection errors are retried with backoff."""
        guards = self._take(1, timeout)
        return guards[0] if guards else None

    def next_batch(self, n: int, timeout: float | None = None) -> list[MessageGuard]:
        """Up to ``n`` messages in one round trip when any are waiting; otherwise block
        for the first and top up. ``[]`` once ``timeout`` passes or after ``close()``."""
        if not isinstance(n, int) or not 1 <= n <= MAX_BATCH:
            raise ValueError(f"n must be an int from 1 to {MAX_BATCH}, got {n!r}")
        return self._take(n, timeout)

    def ack_many(self, guards: Iterable[MessageGuard]) -> list[bool]:
        """Ack many of this consumer's guards in one round trip; True where each was acked."""
        guards = list(guards)
        for g in guards:
            if g.consumer is not self:
                raise ValueError(f"message {g.id} belongs to consumer {g.consumer.name}")
            if g.settled:
                raise AlreadySettled(f"message {g.id} was already settled")
        if not guards:
            return []
        raws = [g.raw for g in guards]
        done = scripts.ACK(self.r, (self.processing_key,), raws)
        for g in guards:
            g.settled = True
        self._held.difference_update(raws)
        if isinstance(done, int):  # all removed at once
            return [True] * len(guards)
        return [bool(d) for d in done]

    def release(self, guards: Iterable[MessageGuard]) -> int:
        """Hand unstarted messages back to the front of the queue, uncounted (a delivery
        that was never handled is no attempt). Returns how many were still ours."""
        guards = [g for g in guards if not g.settled]
        if not guards:
            return 0
        moved = scripts.RELEASE(
            self.r, (self.processing_key, self.keys.queue), [g.raw for g in guards]
        )
        for g in guards:
            g.settled = True
            self._held.discard(g.raw)
        return int(moved)

    def close(self) -> None:
        """Stop the heartbeat, hand every unsettled message back to the queue, deregister.

        Ends a ``next()`` blocked in another thread within one block time. If Redis
        cannot be reached the error propagates; the messages stay in the processing
        list and the GC returns them once this consumer's deadline passes.
        """
        if self._closed.is_set():
            return
        self._closed.set()
        self._heartbeat.stop()
        with self._take_lock:
            keys = (self.keys.consumers, self.processing_key, self.keys.queue)
            scripts.DEREGISTER(self.r, keys, (self.name,))
            self._held.clear()

    def stop_heartbeat(self) -> None:
        """Stop beating but hand nothing back: what this consumer holds waits for the GC,
        once the deadline passes, as if the process had died (a worker stopped at once)."""
        self._heartbeat.stop()

    def forget(self, raw: bytes) -> None:
        """A guard of ours was settled."""
        self._held.discard(raw)

    def abandon(self, guards: Iterable[MessageGuard]) -> None:
        """Give up on guards whose settlement could not be sent: the next take hands
        their messages, if still here, back to the queue (a redelivery, never a loss)."""
        for g in guards:
            self._held.discard(g.raw)
        self._reconcile = True

    def __iter__(self) -> Iterator[MessageGuard]:
        """Messages as they come, until ``close()``."""
        while (guard := self.next()) is not None:
            yield guard

    def __enter__(self) -> Consumer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- taking ---------------------------------------------------------------

    def _take(self, n: int, timeout: float | None) -> list[MessageGuard]:
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be None or >= 0, got {timeout!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed.is_set():
            left = self.block if deadline is None else min(self.block, deadline - time.monotonic())
            try:
                with self._take_lock:
                    if self._closed.is_set():
                        break
                    raws = self._take_raw(n, left)
                    if self._closed.is_set():
                        break  # close() waits for this lock, then hands these back
                self._failures = 0
            except TRANSIENT as exc:
                self._backoff(exc)
                raws = []
            if raws:
                guards = self._guards(raws)
                if guards:
                    return guards
                continue  # all were undecodable (now dead-lettered): keep waiting
            if deadline is not None and time.monotonic() >= deadline:
                break
        return []

    def _take_raw(self, n: int, block: float) -> list[bytes]:
        """Move up to n raw messages into the processing list; block at most ``block`` s."""
        if self._reconcile:
            self._hand_back_unknown()
        raws = self._take_now(n, 0)
        if raws or block < 0.001:
            return raws
        raw = self._block_for_one(block)
        if raw is None:
            return []
        return [raw, *self._take_now(n - 1, 1)] if n > 1 else [raw]

    def _block_for_one(self, block: float) -> bytes | None:
        """Register and wait up to ``block`` s for one message, in one round trip. The
        registration is a plain ZADD on the server's clock: unlike a script, it cannot be
        missing after a server restart while the BLMOVE behind it runs."""
        pipe = self.r.pipeline(transaction=False)
        pipe.execute_command("ZADD", self.keys.consumers, self._heartbeat.deadline_ms(), self.name)
        move = ("BLMOVE", self.keys.queue, self.processing_key, "RIGHT", "LEFT", f"{block:.3f}")
        pipe.execute_command(*move)
        pipe.execute_command("LLEN", self.processing_key)
        replies = pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        fresh, raw, length = replies
        self._note_registration(fresh)
        self._check_length(length, raw is not None)
        return raw  # type: ignore[no-any-return]

    def _take_now(self, n: int, taken: int) -> list[bytes]:
        """Take up to n without blocking; ``taken``: how many this take already moved."""
        keys = (self.keys.consumers, self.keys.queue, self.processing_key)
        deadline = self._heartbeat.deadline_ms()
        fresh, raws, length = scripts.TAKE(self.r, keys, (self.name, deadline, n))
        self._note_registration(fresh)
        self._check_length(length, taken + len(raws))
        return raws  # type: ignore[no-any-return]

    def _check_length(self, length: int, taken: int) -> None:
        """More in the processing list than we hold means a take's reply was lost (and
        the client retried it unseen, as redis-py does for ``Redis(host=...)``): hand the
        orphans back on the next take. Settles running meanwhile only make it shorter."""
        if length > len(self._held) + taken:
            self._reconcile = True

    def _guards(self, raws: list[bytes]) -> list[MessageGuard]:
        guards: list[MessageGuard] = []
        decode, held = self.codec.decode, self._held
        for raw in raws:
            try:
                mid, enqueued_ms, data, deliveries = fields(raw)
                payload = decode(data)
            except DecodeError as exc:
                self._dead_letter_garbage(raw, f"undecodable: {exc.reason}")
                continue
            except Exception as exc:
                self._dead_letter_garbage(
                    raw, f"undecodable payload ({type(self.codec).__name__}): {exc}"
                )
                continue
            held.add(raw)
            guards.append(MessageGuard(self, raw, mid, payload, deliveries + 1, enqueued_ms))
        return guards

    def _dead_letter_garbage(self, raw: bytes, reason: str) -> None:
        log.error(
            "queue %s: dead-lettering a message that cannot be decoded: %s", self.queue, reason
        )
        try:
            scripts.DEAD_LETTER(self.r, (self.processing_key, self.keys.dead), (reason, raw))
        except TRANSIENT as exc:
            # It stays in the processing list; the next reconcile hands it back.
            log.warning("could not dead-letter it (%s); it will be handed back", exc)
            self._reconcile = True

    # -- registration and recovery ------------------------------------------------

    def _on_fresh(self) -> None:
        if self._registered:
            log.warning(
                "consumer %s of queue %s had been reaped (frozen past its deadline?); "
                "registered again, its earlier messages were returned to the queue",
                self.name,
                self.queue,
            )
        self._registered = True

    def _note_registration(self, fresh: Any) -> None:
        if fresh:
            self._on_fresh()

    def _hand_back_unknown(self) -> None:
        """Return to the queue what sits in our processing list without a guard: left by
        a previous consumer of this name, or taken by a move whose reply was lost."""
        held = set(self._held)
        unknown = [raw for raw in self.r.lrange(self.processing_key, 0, -1) if raw not in held]
        if unknown:
            unknown.reverse()  # oldest first
            moved = scripts.RELEASE(self.r, (self.processing_key, self.keys.queue), unknown)
            log.warning(
                "consumer %s handed back %d message(s) it held without a guard", self.name, moved
            )
        self._reconcile = False

    def _backoff(self, exc: Exception) -> None:
        self._failures += 1
        self._reconcile = True
        pause = min(2.0, 0.05 * 2 ** min(self._failures, 6)) * random.uniform(0.5, 1.0)
        log.warning("consumer %s: %s; retrying in %.2f s", self.name, exc, pause)
        self._closed.wait(pause)
