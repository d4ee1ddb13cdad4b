"""Consumer: take messages from a queue into this consumer's own lists.

A message is taken by one atomic move (``take.lua``, or ``BLMOVE`` when the
queue is empty), so it is always in a Redis list, never only in this process.
A plain consumer takes into its processing list (it hands each message to the
application at once); a Worker's consumer takes into its prefetch list and
moves a chunk to the processing list as a thread starts it (``start``). What
comes back from the processing list counts a delivery; from the prefetch list,
nothing: no handler saw it.

Each take travels with a registration whose deadline, on the server's clock,
outlasts the block, so a message only enters the list of a consumer the GC
knows: a consumer frozen past its deadline and reaped registers again with its
next take. Each take also reads the list's length: more than the consumer
holds means a reply was lost, and the orphans are handed back.

Every consumer instance has its own ``id`` (``name@token``) and keys: names
need not be unique, and two live instances of one name never share a list.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from redis.cluster import RedisCluster

from . import envelope, scripts
from .client import TRANSIENT, check_client, eviction_check, socket_timeout, where
from .codecs import Codec, MsgpackCodec
from .errors import AlreadySettled, DecodeError
from .guard import GuardCore, MessageGuard
from .heartbeat import RECOVER_CHUNK, Heartbeat, beat_forever, recover
from .keys import QueueKeys, validate_name
from .plan import Batch, Driver, Exclusive, Pause, Plan, batch, blocking, raise_any, script

log = logging.getLogger("orizuru_py.consumer")

DEFAULT_HEARTBEAT_TIMEOUT = 30.0
DEFAULT_BLOCK_TIME = 1.0
DEFAULT_MAX_ATTEMPTS = 5
MAX_BATCH = 10_000
_ACK_CHUNK = 1000


def default_name() -> str:
    """hostname-pid: tells an operator where a consumer runs (its id adds a token)."""
    host = "".join(c for c in socket.gethostname() if c.isalnum() or c in "-_.") or "host"
    return f"{host[:64]}-{os.getpid()}"


def check_heartbeat_timeout(value: float) -> None:
    if not isinstance(value, int | float) or not 0.2 <= value < 86_400:
        raise ValueError(f"heartbeat_timeout must be from 0.2 s to a day, got {value!r}")


def check_max_attempts(value: int | None) -> int:
    """max_attempts as the scripts take it (0: no limit)."""
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"max_attempts must be None or an int >= 1, got {value!r}")
    return value


G = TypeVar("G", bound=GuardCore)


class ConsumerCore(Generic[G]):
    """Everything a consumer decides and remembers; ``Consumer`` and the asyncio one
    only do the I/O (run these plans, beat from a thread or a task)."""

    guard_class: type[G]
    driver_class: type[Any] = Driver

    def __init__(
        self,
        r: Any,
        queue: str,
        *,
        name: str | None = None,
        heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
        max_attempts: int | None = DEFAULT_MAX_ATTEMPTS,
        codec: Codec | None = None,
        prefix: str = "orizuru",
        block_time: float = DEFAULT_BLOCK_TIME,
        prefetch: bool = False,
        token: str | None = None,
    ) -> None:
        self.keys = keys = QueueKeys(queue, prefix)
        self.name = validate_name(name if name is not None else default_name(), "consumer name")
        self.id = f"{self.name}@{token or os.urandom(3).hex()}"
        check_heartbeat_timeout(heartbeat_timeout)
        self.max_attempts = check_max_attempts(max_attempts)
        if not isinstance(block_time, int | float) or not block_time > 0:
            raise ValueError(f"block_time must be positive, got {block_time!r}")
        check_client(r)
        self.r = r
        self._driver = self.driver_class(r)
        self._beat_driver = self.driver_class(r)  # its own stop: a frozen consumer may resume
        self.cluster = isinstance(r, RedisCluster) or type(r).__name__ == "RedisCluster"
        self.codec = codec or MsgpackCodec()
        self.processing_key = keys.processing(self.id)
        self.prefetch_key = keys.prefetch(self.id)
        self.prefetching = prefetch
        self._dest = self.prefetch_key if prefetch else self.processing_key
        self.heartbeat_timeout = heartbeat_timeout
        self._timeout_ms = int(heartbeat_timeout * 1000)
        self.tick = min(0.5, heartbeat_timeout / 4)
        # A block must end before the registration sent with it expires, and before
        # the client's socket timeout fires (redis-py would retry it silently).
        limits = [block_time, heartbeat_timeout / 2]
        sock = socket_timeout(r)
        if sock is not None:
            limits.append(sock / 2)
        self.block = min(limits)
        self.ack_keys = (self.processing_key, keys.cancel, keys.unique, keys.unique_expiry)
        self.dead_letter_keys = (
            self.processing_key,
            keys.dead,
            keys.cancel,
            keys.unique,
            keys.unique_expiry,
        )
        # What sits in our lists as far as we know: a multiset of exact bytes (a resent
        # push can put two equal copies in one list).
        self._known: Counter[bytes] = Counter()  # copies of each message held
        self._known_count = 0
        self._known_lock = threading.Lock()
        self.heartbeat = Heartbeat(keys, self.id, self.name, self._timeout_ms)
        self._started = False
        self._reconcile = True  # look for orphans before the first take
        self._failures = 0
        self._queues_registered: set[str] = set()
        self.cancels_pending = 0
        self.cancelled_ids: frozenset[str] = frozenset()
        self.paused = False
        self.handled = self.failed = 0

    @property
    def queue(self) -> str:
        return self.keys.name

    @property
    def closed(self) -> bool:
        return bool(self._driver.closed.is_set())

    @property
    def held(self) -> int:
        """Messages in this consumer's lists, as far as it knows."""
        return self._known_count

    # -- the public plans ---------------------------------------------------------------

    def _next(self, timeout: float | None = None) -> Plan[G | None]:
        """The next message, or None once ``timeout`` seconds pass (None: wait until one
        comes or the consumer is closed). Connection errors are retried with backoff."""
        guards = yield from self._take(1, timeout)
        return guards[0] if guards else None

    def _next_batch(
        self, n: int, timeout: float | None = None, *, started: bool = False
    ) -> Plan[list[G]]:
        """Up to ``n`` messages in one round trip when any are waiting; otherwise block
        for the first and top up. ``[]`` once ``timeout`` passes or after ``close()``.
        ``started`` (a worker whose handler is quick): take the batch straight into the
        processing list as one chunk; messages delivered before go to the prefetch list
        (their guards' ``started`` is False) to start alone."""
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_BATCH:
            raise ValueError(f"n must be an int from 1 to {MAX_BATCH}, got {n!r}")
        return (yield from self._take(n, timeout, started))

    def _ack_many(self, guards: Iterable[G]) -> Plan[list[bool]]:
        """Ack many of this consumer's guards in one round trip; True where each was acked."""
        guards = list(guards)
        for g in guards:
            if g.consumer is not self:
                raise ValueError(f"message {g.id} belongs to consumer {g.consumer.id}")
            if g.settled:
                raise AlreadySettled(f"message {g.id} was already settled")
        if not guards:
            return []
        chunks = [guards[i : i + _ACK_CHUNK] for i in range(0, len(guards), _ACK_CHUNK)]
        if len(chunks) == 1:  # one command: no pipeline, less work per call
            replies = [(yield from script(scripts.ACK, self.ack_keys, self.ack_args(guards)))]
        else:
            calls = [scripts.ACK.args(self.ack_keys, self.ack_args(chunk)) for chunk in chunks]
            replies = raise_any((yield from batch(calls, [scripts.ACK])))
        out: list[bool] = []
        for chunk, done in zip(chunks, replies, strict=True):
            out += [True] * len(chunk) if isinstance(done, int) else [bool(d) for d in done]
        for g in guards:
            g.settled = True
        self.forget([g.raw for g in guards], handled=True)
        return out

    def _close(self) -> Plan[None]:
        """Hand everything back and deregister (the front has stopped the heartbeat).
        Messages handed to the application and never settled go back to the front of
        the queue with this delivery counted (dead-lettered at ``max_attempts``); what
        a worker took and never started, uncounted. If Redis cannot be reached the
        error propagates; the messages stay, and the GC returns them once this
        consumer's deadline passes."""
        yield Exclusive(self._recover())

    def _recover(self) -> Plan[None]:
        if self._started:
            yield from recover(self.keys, self.id, self.max_attempts, "close")
        with self._known_lock:
            self._known.clear()
            self._known_count = 0

    # -- taking ---------------------------------------------------------------------------

    def _take(self, n: int, timeout: float | None, started: bool = False) -> Plan[list[G]]:
        if timeout is not None and not (isinstance(timeout, int | float) and timeout >= 0):
            raise ValueError(f"timeout must be None or >= 0, got {timeout!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.closed:
            left = self.block if deadline is None else min(self.block, deadline - time.monotonic())
            try:
                raws, into = yield Exclusive(self._take_once(n, left, started))
                self._failures = 0
            except TRANSIENT as exc:
                yield Pause(self._backoff(exc))
                raws, into = [], []
            if raws:
                guards = yield from self._guards(raws, into)
                if guards:
                    return guards
                continue  # all were garbage or expired (now dead-lettered or dropped)
            if deadline is not None and time.monotonic() >= deadline:
                break
            if self.paused and left > 0:
                yield Pause(left)
        return []

    def _take_once(
        self, n: int, block: float, started: bool = False
    ) -> Plan[tuple[list[bytes], list[str]]]:
        """Move up to n raw messages into our lists; block at most ``block`` s. Returns
        them and, for each, the list it went to."""
        if self.closed:
            return [], []
        if not self._started:
            yield from self._start()
        if self._reconcile:
            yield from self._hand_back_unknown()
        raws, into = yield from self._take_now(n, 0, started)
        if raws or self.paused or block < 0.001:
            return raws, into
        raw = yield from self._block_for_one(block)
        if raw is None:
            return [], []
        raws, into = [raw], [self._dest]
        if n > 1:
            more, more_into = yield from self._take_now(n - 1, 1, False)
            raws, into = raws + more, into + more_into
        if self.closed:  # close() waits for this step: give back what it took, uncounted
            packed = envelope.packed_ids(reversed(raws))
            yield from script(scripts.HAND_BACK, (self._dest, self.keys.queue), (packed,))
            self.forget(raws)
            return [], []
        return raws, into

    def _take_now(
        self, n: int, taken: int, started: bool = False
    ) -> Plan[tuple[list[bytes], list[str]]]:
        """Take up to n without blocking; ``taken``: how many this take already moved."""
        k = self.keys
        keys = (k.consumers, k.queue, self._dest, k.paused, k.cancel, k.unique,
                k.unique_expiry, k.counts, self.processing_key)  # fmt: skip
        argv = (self.id, self.heartbeat.deadline_ms(), n, "started" if started else "")
        fresh, paused, raws, length, pending, unstarted = yield from script(
            scripts.TAKE, keys, argv
        )
        self._note(fresh, length, taken + len(raws), pending)
        self.paused = bool(paused)
        self._remember(raws)
        if not started:
            return raws, [self._dest] * len(raws)
        into = [self.processing_key] * len(raws)
        for i in unstarted:
            into[i - 1] = self._dest
        return raws, into

    def _block_for_one(self, block: float) -> Plan[bytes | None]:
        """Register and wait up to ``block`` s for one message, in one round trip. The
        registration is a plain ZADD on the server's clock: unlike a script, it cannot be
        missing after a server restart while the BLMOVE behind it runs."""
        k = self.keys
        replies = yield Batch(
            (
                ("ZADD", k.consumers, "GT", self.heartbeat.deadline_ms(), self.id),
                ("BLMOVE", k.queue, self._dest, "RIGHT", "LEFT", f"{block:.3f}"),
                ("LLEN", self._dest),
                ("HLEN", k.cancel),
            )
        )
        fresh, raw, length, pending = raise_any(replies)
        self._note(fresh, length, raw is not None, pending)
        if raw is None:
            return None
        if pending and envelope.message_id(raw):
            keys = (self._dest, k.cancel, k.unique, k.unique_expiry, k.counts)
            argv = ("cancelled", envelope.packed_ids([raw]))
            (dropped,) = yield from script(scripts.DROP, keys, argv)
            if dropped:
                return None
        return self._remember([raw])[0]

    def _note(self, fresh: Any, length: int, taken: int, pending: int) -> None:
        """What a take tells: registered afresh (we had been reaped), a reply lost (the
        list is longer than what we hold, the client retried a move unseen), and
        whether cancellations are pending (then settles check for them)."""
        if fresh:
            self.heartbeat.fresh(self.queue)
        if length > self._known_count + taken:
            self._reconcile = True
        self.cancels_pending = pending

    def _remember(self, raws: list[bytes]) -> list[bytes]:
        if raws:
            with self._known_lock:
                self._known.update(raws)  # Counter's C loop
                self._known_count += len(raws)
        return raws

    def forget(self, raws: Iterable[bytes], *, handled: bool | None = None) -> None:
        """Messages of ours were settled (``handled``: counted as handled, or as failed)."""
        n = 0
        with self._known_lock:
            known, pop = self._known, self._known.pop
            for raw in raws:
                copies = pop(raw, 0)
                if copies > 1:
                    known[raw] = copies - 1
                n += copies > 0
            self._known_count -= n
        if handled is True:
            self.handled += n
        elif handled is False:
            self.failed += n

    def abandon(self, raws: Iterable[bytes]) -> None:
        """Give up on messages whose settlement could not be sent: the next take hands
        them, if still here, back to the queue (a redelivery, never a loss)."""
        self.forget(raws)
        self._reconcile = True

    def _guards(self, raws: list[bytes], into: list[str]) -> Plan[list[G]]:
        """Guards for the taken ``raws`` (each gone ``into`` a list of ours); what cannot
        be decoded is dead-lettered with the reason, what expired before it was taken is
        dropped and counted."""
        guards: list[G] = []
        bad: list[tuple[bytes, str, str]] = []
        expired: dict[str, list[bytes]] = {}
        decode, make, parse = self.codec.decode, self.guard_class, envelope.parse
        processing = self.processing_key
        now = 0
        for raw, key in zip(raws, into, strict=True):
            try:
                mid, enqueued_ms, deliveries, unique_key, expires_ms, data = parse(raw)
                payload = decode(data)
            except DecodeError as exc:
                bad.append((raw, f"undecodable: {exc.reason}", key))
                continue
            except Exception as exc:
                codec = type(self.codec).__name__
                bad.append((raw, f"undecodable payload ({codec}): {exc}", key))
                continue
            if expires_ms is not None:
                now = now or envelope.now_ms()
                if expires_ms < now:
                    expired.setdefault(key, []).append(raw)
                    continue
            guard = make(self, raw, mid, payload, deliveries + 1, enqueued_ms, unique_key)
            guard.started = key is processing
            guards.append(guard)
        for raw, reason, key in bad:
            yield from self._dead_letter_garbage(raw, reason, key)
        for key, dropped in expired.items():
            yield from self._drop_expired(dropped, key)
        return guards

    def _dead_letter_garbage(self, raw: bytes, reason: str, key: str) -> Plan[None]:
        log.error(
            "queue %s: dead-lettering a message that cannot be decoded: %s", self.queue, reason
        )
        k = self.keys
        keys = (key, k.dead, k.cancel, k.unique, k.unique_expiry)
        try:
            yield from script(scripts.DEAD_LETTER, keys, (reason, "raw", raw))
        except TRANSIENT as exc:
            # It stays in our list; the next reconcile hands it back.
            log.warning("could not dead-letter it (%s); it will be handed back", exc)
            self.abandon([raw])
            return
        self.forget([raw])

    def _drop_expired(self, raws: list[bytes], key: str) -> Plan[None]:
        k = self.keys
        keys = (key, k.cancel, k.unique, k.unique_expiry, k.counts)
        try:
            yield from script(scripts.DROP, keys, ("expired", envelope.packed_ids(raws)))
        except TRANSIENT as exc:
            log.warning("could not drop %d expired message(s) (%s); handed back", len(raws), exc)
            self.abandon(raws)
            return
        log.info("queue %s: dropped %d message(s) whose ttl had passed", self.queue, len(raws))
        self.forget(raws)

    # -- a worker's chunks ------------------------------------------------------------------

    def _start(self) -> Plan[None]:
        """The first beat (registration, promotion, registry, eviction check), then the
        heartbeat of the front (a thread or a task)."""
        yield from eviction_check(self.r)
        yield from self.heartbeat.beat(self, self.registering(self.keys))
        self.registered(self.keys)
        self._started = True
        self._begin_beating()

    def _begin_beating(self) -> None:
        raise NotImplementedError  # the blocking and the asyncio front start their own

    def _settle_start(self, done: list[G], chunk: list[G], resent: bool = False) -> Plan[list[G]]:
        """A worker's thread acks what it finished (``done``) and starts its next
        ``chunk`` in one round trip. Starting moves the chunk from the prefetch list
        (taken, uncounted if the worker dies) to the processing list (handed to a handler:
        counted if it comes back). Returns the guards of the chunk to handle; the others
        were cancelled, or taken back by the GC. ``resent``: after a lost reply, when the
        first sending may have been applied."""
        k = self.keys
        calls = []
        if done:
            calls.append(scripts.ACK.args(self.ack_keys, self.ack_args(done)))
        if chunk:
            keys = (self.prefetch_key, self.processing_key, k.cancel, k.unique, k.unique_expiry,
                    k.counts)  # fmt: skip
            packed = envelope.packed_ids([g.raw for g in chunk])
            argv = ("1" if resent else "0", packed, len(chunk))
            calls.append(scripts.START.args(keys, argv))
        replies = raise_any((yield from batch(calls, [scripts.ACK, scripts.START])))
        if done:
            for g in done:
                g.settled = True
            self.forget([g.raw for g in done], handled=True)
        if not chunk:
            return []
        statuses = replies[-1]
        if isinstance(statuses, int):  # all started
            return chunk
        started, dropped = [], []
        for g, status in zip(chunk, statuses, strict=True):
            if status in (1, 3):
                started.append(g)
            else:
                g.settled = True
                dropped.append(g.raw)
        self.forget(dropped)
        return started

    def _release_prefetch(self, started: Sequence[GuardCore] = ()) -> Plan[int]:
        """Hand every unstarted message back to the front of the queue, uncounted, in
        bounded steps, and the ``started`` ones no handler saw (taken straight into the
        processing list); returns how many."""
        moved = 0
        if started:
            packed = envelope.packed_ids([g.raw for g in reversed(started)])
            keys = (self.processing_key, self.keys.queue)
            moved = yield from script(scripts.HAND_BACK, keys, (packed,))
            self.forget([g.raw for g in started])
        left = 1
        while left:
            n, left = yield from script(
                scripts.RELEASE, (self.prefetch_key, self.keys.queue), (RECOVER_CHUNK,)
            )
            moved += n
        return moved

    # -- settling support ---------------------------------------------------------------

    def ack_args(self, guards: Sequence[GuardCore]) -> list[Any]:
        """ack.lua's arguments: the packed ids, their number, the positions of those that
        carry a unique key."""
        return [
            envelope.packed_ids([g.raw for g in guards]),
            len(guards),
            *(i for i, g in enumerate(guards, 1) if g.unique_key is not None),
        ]

    def registering(self, keys: QueueKeys) -> list[tuple[Any, ...]]:
        """The command adding a queue this consumer uses to the registry, until sent once
        (then ``registered``): it travels with other work, never alone."""
        if keys.name in self._queues_registered:
            return []
        return [("SADD", keys.registry, keys.name)]

    def registered(self, keys: QueueKeys) -> None:
        self._queues_registered.add(keys.name)

    # -- registration and recovery --------------------------------------------------------

    def known_ids(self) -> list[str]:
        """The ids of the messages in our lists (for the heartbeat's cancellation check)."""
        with self._known_lock:
            found = [envelope.message_id(raw) for raw in self._known]
        return [i for i in found if i]

    def _hand_back_unknown(self) -> Plan[None]:
        """Return to the queue what sits in our lists without our knowing: taken by a move
        whose reply was lost, so no application code saw it (uncounted). Both lists are
        read in one MULTI, so a chunk a worker's thread starts meanwhile is not seen
        twice."""
        lists = (self.prefetch_key, self.processing_key)
        with self._known_lock:  # before the lists: a message acked meanwhile is not "unknown"
            spare = dict(self._known)
        replies = yield Batch(tuple(("LRANGE", key, 0, -1) for key in lists), transaction=True)
        contents = raise_any(replies)
        for key, items in zip(lists, contents, strict=True):
            unknown = []
            for raw in reversed(items):  # oldest first
                if spare.get(raw, 0) > 0:
                    spare[raw] -= 1
                else:
                    unknown.append(raw)
            moved = 0
            garbage = [raw for raw in unknown if envelope.message_id(raw) is None]
            for raw in garbage:  # no id: dead-lettered, as a take does with it
                reason = "undecodable: not an orizuru envelope"
                yield from self._dead_letter_garbage(raw, reason, key)
            if len(garbage) < len(unknown):
                packed = envelope.packed_ids(raw for raw in unknown if raw not in garbage)
                moved = yield from script(scripts.HAND_BACK, (key, self.keys.queue), (packed,))
            if moved:
                log.warning(
                    "consumer %s handed back %d message(s) it held without knowing (a lost reply)",
                    self.id,
                    moved,
                )
        self._reconcile = False

    def _backoff(self, exc: Exception) -> float:
        self._failures += 1
        self._reconcile = True
        pause = min(2.0, 0.05 * 2.0 ** min(self._failures, 6)) * random.uniform(0.5, 1.0)
        log.warning(
            "consumer %s: %s (server %s); retrying in %.2f s", self.id, exc, where(self.r), pause
        )
        return pause


class Consumer(ConsumerCore[MessageGuard]):
    """Takes messages from one queue (the blocking API). Belongs to one thread;
    ``close()`` may come from any."""

    guard_class = MessageGuard
    _driver: Driver
    _heartbeat: threading.Thread | None = None
    _closing = False

    next = blocking(ConsumerCore._next)
    next_batch = blocking(ConsumerCore._next_batch)
    ack_many = blocking(ConsumerCore._ack_many)

    def close(self) -> None:
        """Stop the heartbeat, hand every unsettled message back, deregister (see
        ``ConsumerCore._close``). Ends a ``next()`` blocked in another thread within one
        block time."""
        if self._closing:
            return
        self._closing = True
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
