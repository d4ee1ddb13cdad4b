"""Held: what one consumer holds in its lists, as far as it knows, shared with its guards.

The consumer remembers each message it takes; a guard forgets its message when it
settles it. The multiset is of exact bytes: a push that a client resent can put two
equal copies in one list, and each is a message held. ``stale`` says the lists may
hold what this knowledge lacks (a reply was lost, a settle was given up, a request
was cancelled in flight): the consumer's next take reconciles them, handing back
what no application code saw uncounted, and what it saw (``seen``) counted. Guards
settle against ``keys``, ``processing`` and the cancellations seen here, so they need
nothing else of their consumer; a search deep in a list holds ``scan_lock``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

from . import envelope
from .keys import QueueKeys


class Held:
    """One consumer's lists and the messages it knows are in them."""

    def __init__(
        self, keys: QueueKeys, consumer_id: str, *, cluster: bool, scan_lock: Any,
        max_attempts: int = 0,
    ) -> None:  # fmt: skip
        self.keys = keys
        self.max_attempts = max_attempts  # deliveries before a retry dead-letters (0: none)
        self.consumer_id = consumer_id
        self.processing = keys.processing(consumer_id)
        self.prefetch = keys.prefetch(consumer_id)
        self.cluster = cluster
        self._copies: Counter[bytes] = Counter()
        self._seen: Counter[bytes] = Counter()  # handed out, then given up: return counted
        self._lock = threading.Lock()
        self.scan_lock = scan_lock  # one rotating search of these lists at a time
        self.count = 0
        self.stale = True  # until the first take has looked for orphans
        self.handled = self.failed = 0
        self.cancels_pending = 0  # cancellations pending in the queue, as last seen
        self.cancelled: frozenset[str] = frozenset()  # ids of ours cancelled in flight
        self.registered: set[str] = set()  # queue names this consumer has registered
        self.epoch = 0  # raised when the consumer finds it was reaped: older guards are void

    def remember(self, raws: list[bytes]) -> list[bytes]:
        if raws:
            with self._lock:
                self._copies.update(raws)  # Counter's C loop
                self.count += len(raws)
        return raws

    def forget(self, raws: Iterable[bytes], *, handled: bool | None = None) -> None:
        """Messages of ours were settled (``handled``: counted as handled, or as failed)."""
        with self._lock:
            n = self._drop(raws)
        if handled is True:
            self.handled += n
        elif handled is False:
            self.failed += n

    def abandon(self, raws: Iterable[bytes], *, seen: bool = False) -> None:
        """Give up on messages whose take or settling could not be finished (a connection
        lost, a request cancelled in flight): the next take hands them, if still here,
        back to the queue, with this delivery counted if the application ``seen`` them."""
        raws = list(raws)
        with self._lock:  # at once: a reconcile never finds them neither held nor seen
            self._drop(raws)
            if seen:
                self._seen.update(raws)
        self.stale = True

    def _drop(self, raws: Iterable[bytes]) -> int:
        """Forget a copy of each of ``raws`` (the caller holds the lock); how many were held."""
        n = 0
        copies, pop = self._copies, self._copies.pop
        for raw in raws:
            held = pop(raw, 0)
            if held > 1:
                copies[raw] = held - 1
            n += held > 0
        self.count -= n
        return n

    def knowledge(self) -> tuple[Counter[bytes], Counter[bytes]]:
        """What a reconcile sorts the lists by, read at once (before the lists: a message
        settled meanwhile is then not taken for an orphan): the multiset held, and the
        messages given up after they were handed out, now to be returned counted."""
        with self._lock:
            seen, self._seen = self._seen, Counter()
            return Counter(self._copies), seen

    def copies(self) -> dict[bytes, int]:
        """The multiset as it is now."""
        with self._lock:
            return dict(self._copies)

    def ids(self) -> list[str]:
        """The ids of the messages held (for the heartbeat's cancellation check)."""
        with self._lock:
            found = [envelope.message_id(raw) for raw in self._copies]
        return [i for i in found if i]

    def clear(self) -> None:
        with self._lock:
            self._copies.clear()
            self.count = 0

    def fence(self) -> None:
        """We had been reaped: what we held went back to the queue, and guards taken before
        (their ``epoch``) must not be begun here (a worker drops those it has not begun)."""
        self.epoch += 1

    def registering(self, keys: QueueKeys) -> list[tuple[str, ...]]:
        """The command adding a queue this consumer uses to the registry, until sent once
        (then ``registered``): it travels with other work, never alone."""
        if keys.name in self.registered:
            return []
        return [("SADD", keys.registry, keys.name)]

    def register(self, keys: QueueKeys) -> None:
        self.registered.add(keys.name)
