"""Consumer: take messages from a queue into this consumer's own lists.

A message is taken by one atomic move (``take.lua``, or ``BLMOVE`` when the
queue is empty), so it is always in a Redis list, never only in this process.
A plain consumer takes into its processing list (it hands each message to the
application at once); a Worker's consumer takes into its prefetch list and
moves a chunk to the processing list as a thread starts it (``chunks.py``). What
comes back from the processing list counts a delivery; from the prefetch list,
nothing: no handler saw it.

Each take travels with a registration whose deadline, on the server's clock,
outlasts the block, so a message only enters the list of a consumer the GC
knows: a consumer frozen past its deadline and reaped registers again with its
next take. Each take also reads the list's length: more than the consumer
holds means a reply was lost, and the orphans are handed back (``reconcile``).

Every consumer instance has its own ``id`` (``name@token``) and keys: names
need not be unique, and two live instances of one name never share a list.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

from redis.cluster import RedisCluster
from redis.exceptions import RedisError

from . import checks, envelope, scripts, search
from .client import (
    TRANSIENT,
    Client,
    check_client,
    eviction_probe,
    eviction_verdict,
    socket_timeout,
)
from .codecs import Codec, MsgpackCodec
from .delivery import deliver
from .errors import AlreadySettled
from .guard import GuardCore, MessageGuard, ack_step
from .heartbeat import Heartbeat, beat_forever, recover
from .held import Held
from .keys import QueueKeys, validate_name
from .outage import Retrying
from .plan import Batch, Call, Driver, Exclusive, Pause, blocking, raise_any
from .reconcile import reconcile

DEFAULT_HEARTBEAT_TIMEOUT = 30.0
DEFAULT_BLOCK_TIME = 1.0
_ACK_CHUNK = 1000


def default_name() -> str:
    """hostname-pid: tells an operator where a consumer runs (its id adds a token)."""
    host = "".join(c for c in socket.gethostname() if c.isalnum() or c in "-_.") or "host"
    return f"{host[:64]}-{os.getpid()}"


log = logging.getLogger("orizuru_py.consumer")

G = TypeVar("G", bound=GuardCore)


class ConsumerCore(Generic[G]):
    """What a consumer decides when it takes; ``Consumer`` and the asyncio one only do the
    I/O (run these plans, beat from a thread or a task)."""

    guard_class: type[G]
    driver_class: type[Any] = Driver

    def __init__(
        self,
        r: Client,
        queue: str,
        *,
        name: str | None = None,
        heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
        max_attempts: int | None = checks.DEFAULT_MAX_ATTEMPTS,
        codec: Codec | None = None,
        prefix: str = "orizuru",
        block_time: float = DEFAULT_BLOCK_TIME,
        prefetch: bool = False,
        token: str | None = None,
    ) -> None:
        keys = QueueKeys(queue, prefix)
        self.name = validate_name(name if name is not None else default_name(), "consumer name")
        self.id = f"{self.name}@{token or os.urandom(3).hex()}"
        self.heartbeat_timeout = checks.heartbeat_timeout(heartbeat_timeout)
        self.max_attempts = checks.max_attempts(max_attempts)
        block_time = checks.seconds(block_time, "block_time", positive=True)
        check_client(r)
        self.r = r
        self._driver = self.driver_class(r)
        self._beat_driver = self.driver_class(r)  # its own stop: a frozen consumer may resume
        cluster = isinstance(r, RedisCluster) or type(r).__name__ == "RedisCluster"
        self.held = Held(keys, self.id, cluster=cluster, scan_lock=self.driver_class.new_lock(),
                         max_attempts=self.max_attempts)  # fmt: skip
        self.codec = codec or MsgpackCodec()
        self.processing_key = self.held.processing
        self.prefetch_key = self.held.prefetch
        self._dest = self.prefetch_key if prefetch else self.processing_key
        self.tick = min(0.5, heartbeat_timeout / 4)
        # A block must end before the registration sent with it expires, and before
        # the client's socket timeout fires (redis-py would retry it silently).
        limits = [block_time, heartbeat_timeout / 2]
        sock = socket_timeout(r)
        if sock is not None:
            limits.append(sock / 2)
        self.block = min(limits)
        beating = Retrying(r, f"heartbeat of consumer {self.id}")
        self.heartbeat = Heartbeat(self.held, self.name, int(heartbeat_timeout * 1000), beating)
        self._started = False
        self._shut = False  # closed, everything handed back
        self.retrying = Retrying(r, f"consumer {self.id} taking")
        self.paused = False

    @property
    def keys(self) -> QueueKeys:
        return self.held.keys

    @property
    def queue(self) -> str:
        return self.held.keys.name

    @property
    def closed(self) -> bool:
        return bool(self._driver.closed.is_set())

    # -- the public plans ---------------------------------------------------------------

    async def _next(self, timeout: float | None = None) -> G | None:
        """The next message, or None once ``timeout`` seconds pass (None: wait until one
        comes or the consumer is closed). Connection errors are retried with backoff."""
        guards = await self._take(1, timeout)
        return guards[0] if guards else None

    async def _next_batch(
        self, n: int, timeout: float | None = None, *, started: bool = False
    ) -> list[G]:
        """Up to ``n`` messages in one round trip when any are waiting; otherwise block
        for the first and top up. ``[]`` once ``timeout`` passes or after ``close()``.
        ``started`` (a worker whose handler is quick): take the batch straight into the
        processing list as one chunk; messages delivered before go to the prefetch list
        (their guards' ``started`` is False) to start alone."""
        return await self._take(checks.batch_size(n), timeout, started)

    async def _ack_many(self, guards: Iterable[G]) -> list[bool]:
        """Ack many of this consumer's guards in one round trip; True where each was acked."""
        guards = list(guards)
        for g in guards:
            if g.held is not self.held:
                raise ValueError(f"message {g.id} belongs to consumer {g.held.consumer_id}")
            if g.settled:
                raise AlreadySettled(f"message {g.id} was already settled")
        if not guards:
            return []
        raws = [g.raw for g in guards]
        step = ack_step(guards)
        chunks = [raws[i : i + _ACK_CHUNK] for i in range(0, len(raws), _ACK_CHUNK)]
        try:
            if len(chunks) == 1:  # one command: no pipeline, less work per call
                replies = [await step(raws, False).run()]
            else:
                replies = raise_any(await scripts.batch([step(c, False) for c in chunks]))
            found: list[int] = []
            for chunk, reply in zip(chunks, replies, strict=True):
                statuses, looked, length = search.statuses(reply, len(chunk))
                found += await search.go_on(self.held, chunk, step, statuses, looked, length)
        except BaseException as exc:
            if not isinstance(exc, Exception):  # cancelled in flight: the next take sorts it
                self.held.abandon(raws, seen=True)
            raise
        for g in guards:
            g.settled = True
        self.held.forget(raws, handled=True)
        return [status == 1 for status in found]

    async def _close(self) -> None:
        """Hand everything back and deregister (the front has stopped the heartbeat).
        Messages handed to the application and never settled go back to the front of
        the queue with this delivery counted (dead-lettered at ``max_attempts``); what
        a worker took and never started, uncounted. If Redis cannot be reached the
        error propagates; the messages stay, and the GC returns them once this
        consumer's deadline passes (or a later ``close()`` does it: only a close that
        finished is not done again)."""
        if not self._shut:
            await Exclusive(self._recover())
            self._shut = True

    async def _recover(self) -> None:
        if self._started:
            await recover(self.keys, self.id, self.max_attempts, "close")
        self.held.clear()

    # -- taking ---------------------------------------------------------------------------

    async def _take(self, n: int, timeout: float | None, started: bool = False) -> list[G]:
        """Takes until one brings messages, ``timeout`` passes (``[]``) or the consumer is
        closed. An unreachable server is retried with backoff; if it is still unreachable
        when ``timeout`` passes, its last error is raised: an outage is no empty queue."""
        timeout = checks.timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.closed:
            left = self.block if deadline is None else min(self.block, deadline - time.monotonic())
            try:
                raws, into = await Exclusive(self._take_once(n, left, started))
            except TRANSIENT as exc:
                self.held.stale = True
                pause = self.retrying.failed(exc)
                if deadline is not None:
                    if time.monotonic() >= deadline:
                        raise
                    pause = min(pause, deadline - time.monotonic())
                await Pause(pause)
                continue
            self.retrying.ok()
            if raws:
                try:
                    guards = await deliver(
                        self.held, self.codec, self.guard_class, self._driver, raws, into
                    )
                except BaseException:  # cancelled, say: no guard reaches the caller
                    self.held.abandon(raws)
                    raise
                if guards:
                    return guards
                continue  # all were garbage or expired (now dead-lettered or dropped)
            if deadline is not None and time.monotonic() >= deadline:
                break
            if self.paused and left > 0:
                await Pause(left)
        return []

    async def _take_once(
        self, n: int, block: float, started: bool = False
    ) -> tuple[list[bytes], list[str]]:
        """Move up to n raw messages into our lists; block at most ``block`` s. Returns
        them and, for each, the list it went to. Whatever interrupts it (an error, a
        cancellation) after it moved messages leaves them to the next reconcile."""
        if self.closed:
            return [], []
        if not self._started:
            await self._start()
        if self.held.stale:
            await reconcile(self.held)
        raws: list[bytes] = []
        try:
            raws, into = await self._take_now(n, started)
            self.held.remember(raws)
            if raws or self.paused or block < 0.001:
                return raws, into
            raw = await self._block_for_one(block)
            if raw is None:
                return [], []
            raws, into = self.held.remember([raw]), [self._dest]
            if n > 1:
                more, more_into = await self._take_now(n - 1, False)
                raws, into = raws + self.held.remember(more), into + more_into
            if self.closed:  # close() waits for this step: give back what it took, uncounted
                await scripts.hand_back(self.keys, self._dest, list(reversed(raws))).run()
                self.held.forget(raws)
                return [], []
            return raws, into
        except BaseException:
            self.held.abandon(raws)
            raise

    async def _take_now(self, n: int, started: bool = False) -> tuple[list[bytes], list[str]]:
        """Take up to n without blocking."""
        h = self.held
        deadline = self.heartbeat.deadline_ms()
        take = scripts.take(h.keys, self._dest, h.processing, self.id, deadline, n, started)
        known = h.count  # before sending: what other threads settle meanwhile is not unknown
        reply = await take.run()
        fresh, paused, length, pending, u = reply[:5]
        unstarted, raws = reply[5 : 5 + u], reply[5 + u :]
        self._note(fresh, length, known + len(raws), pending)
        self.paused = bool(paused)
        if not started:
            return raws, [self._dest] * len(raws)
        into = [h.processing] * len(raws)
        for i in unstarted:
            into[i - 1] = self._dest
        return raws, into

    async def _block_for_one(self, block: float) -> bytes | None:
        """Register and wait up to ``block`` s for one message, in one round trip. The
        registration is a plain ZADD on the server's clock: unlike a script, it cannot be
        missing after a server restart while the BLMOVE behind it runs; it is sent again
        after the BLMOVE, so what the move brought is in the lists of a registered
        consumer even if the GC reaped this one while it blocked. A message cancelled
        meanwhile, or a deleted one's tombstone, is dropped."""
        k, h = self.keys, self.held
        register = ("ZADD", k.consumers, "GT", self.heartbeat.deadline_ms(), self.id)
        known = h.count
        replies = await Batch(
            (
                register,
                ("BLMOVE", k.queue, self._dest, "RIGHT", "LEFT", f"{block:.3f}"),
                register,  # again: the GC may have reaped us while we blocked
                ("LLEN", h.prefetch),
                ("LLEN", h.processing),
                ("HLEN", k.cancel),
            )
        )
        fresh, raw, again, prefetched, processing, pending = raise_any(replies)
        raw = bytes(raw) if raw is not None else None
        self._note(fresh or again, prefetched + processing, known + (raw is not None), pending)
        if raw is None:
            return None
        if raw.startswith(envelope.TOMBSTONE):
            tidy = (("LREM", self._dest, 1, raw), ("HINCRBY", k.counts, "tombstones:queue", -1))
            raise_any(await Batch(tidy, transaction=True))
            return None
        if pending and envelope.message_id(raw):
            (dropped,) = await scripts.drop(k, self._dest, "cancelled", [raw]).run()
            if dropped:
                return None
        return raw

    def _note(self, fresh: Any, length: int, known: int, pending: int) -> None:
        """What a take tells: registered afresh (we had been reaped), a reply lost (our
        lists hold more than the ``known`` messages we held when we sent it, and took
        with it: the client retried a move unseen), and whether cancellations are
        pending (then settles check for them)."""
        if fresh:
            self.heartbeat.fresh(self.queue)
        if length > known:
            self.held.stale = True
        self.held.cancels_pending = pending

    async def _start(self) -> None:
        """Return what a predecessor of the same id left (a fixed ``token``: a restarted
        pod), counted as a death would be; then the first beat (registration, promotion,
        registry, eviction check), then the heartbeat of the front (a thread or a task)."""
        for probe in eviction_probe(self.r):  # once per client: an evicting server loses messages
            try:
                info = await Call(probe)
            except RedisError as exc:  # a user the ACL denies INFO: left unchecked
                info = exc
            eviction_verdict(self.r, info)
        _, requeued, dead, released = await recover(self.keys, self.id, self.max_attempts, "close")
        if requeued + dead + released:
            log.warning(
                "consumer %s found %d message(s) left by a predecessor of the same id: "
                "%d returned to the queue counted, %d dead-lettered, %d never started "
                "returned uncounted",
                self.id, requeued + dead + released, requeued, dead, released,
            )  # fmt: skip
        self.held.stale = False  # nothing is ours before the first take
        await self.heartbeat.beat(self.held.registering(self.keys))
        self.held.register(self.keys)
        self._started = True
        self._begin_beating()

    def _begin_beating(self) -> None:
        raise NotImplementedError  # the blocking and the asyncio front start their own


class Consumer(ConsumerCore[MessageGuard]):
    """Takes messages from one queue (the blocking API). Belongs to one thread;
    ``close()`` may come from any."""

    guard_class = MessageGuard
    _driver: Driver
    _heartbeat: threading.Thread | None = None

    next = blocking(ConsumerCore._next)
    next_batch = blocking(ConsumerCore._next_batch)
    ack_many = blocking(ConsumerCore._ack_many)

    def close(self) -> None:
        """Stop the heartbeat, hand every unsettled message back, deregister (see
        ``ConsumerCore._close``). Ends a ``next()`` blocked in another thread within one
        block time."""
        self._driver.closed.set()
        self.stop_heartbeat()
        self._driver.run(self._close())

    def stop_heartbeat(self) -> None:
        """Stop beating, but hand nothing back: what this consumer holds waits for the GC,
        as if the process had died (a worker stopped at once)."""
        self._beat_driver.closed.set()
        beating = self._heartbeat
        if beating is not None and beating is not threading.current_thread():
            beating.join()

    def _begin_beating(self) -> None:
        self._heartbeat = threading.Thread(
            target=self._beat_driver.run,
            args=(beat_forever(weakref.ref(self), self.tick),),
            name=f"orizuru-heartbeat-{self.id}",
            daemon=True,
        )
        self._heartbeat.start()
        weakref.finalize(self, self._beat_driver.closed.set)

    def __iter__(self) -> Iterator[MessageGuard]:
        """Messages as they come, until ``close()``."""
        while (guard := self.next()) is not None:
            yield guard

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
