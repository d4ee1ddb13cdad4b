"""Book: what the hunter did and saw, for the invariants to judge the server's state by.

Every message pushed is entered with what may legitimately make it vanish (a ttl, a
unique key); every delivery (to a step's consumer, a Worker's handler, a child process)
with its attempt number; every ack that returned True, every cancel that returned True,
every purge. Workers' handlers write from their threads and the asyncio loop, so one
lock guards it all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import attrs


@attrs.define
class Pushed:
    """One message the hunter pushed: its payload number, ttl deadline (producer's clock,
    ms: after it the message may be dropped as expired) and unique key."""

    n: int
    expires_ms: int | None
    unique_key: str | None


class Book:
    """The hunter's ledger of one run."""

    def __init__(self, max_attempts: int) -> None:
        self.max_attempts = max_attempts
        self.lock = threading.Lock()
        self.pushed: dict[str, Pushed] = {}
        self.order: list[str] = []  # pushed ids, first push first
        self.handled: set[str] = set()  # a handler (or a step) finished it; its ack may follow
        self.acked: set[str] = set()  # an ack returned True
        self.cancelled: set[str] = set()  # cancel() returned True
        self.cancel_tried: set[str] = set()  # cancel() was called (a mark may drop it later)
        self.purge_candidates: set[str] = set()  # may have been deleted by a purge
        self.purged = 0
        self.unique_exempt: set[str] = set()  # ids present at a purge, which forgot their keys
        self.revivals = 0  # raised around each requeue_dead: delivery counts may restart
        self.reviving = 0  # requeue_dead calls under way
        # id -> the requeue_dead calls before its deliveries, and their attempt numbers
        self.attempts: dict[str, tuple[int, set[int]]] = {}
        self.history: dict[str, list[str]] = {}  # id -> "who@attempt" of each delivery
        self.deliveries = 0
        self.errors: list[str] = []  # violations seen as they happened (a delivery)
        self.unknown: dict[str, tuple[str, int | None]] = {}  # id -> (who, payload n)
        self.pending_n: dict[int, tuple[float | None, float, str | None]] = {}
        self.cancel_cut: set[str] = set()  # ids whose cancel() was itself cancelled

    def take_errors(self) -> list[str]:
        """The violations seen since the last call (a step has ended: every push returned)."""
        with self.lock:
            found, self.errors = self.errors, []
            unknown, self.unknown = self.unknown, {}
        for mid, (who, n) in unknown.items():
            if mid not in self.pushed and not self.adopt(mid, n):
                found.append(f"{who} was given {mid}, which was never pushed")
        return found

    def push(self, mid: str, n: int, ttl: float | None, delay: float, key: str | None) -> bool:
        """Enter a pushed id; False when it is not new (a unique key named a live one)."""
        with self.lock:
            if mid in self.pushed:
                return False
            expires = None
            if ttl is not None:
                expires = int(time.time() * 1000 + (delay + ttl) * 1000)
            self.pushed[mid] = Pushed(n, expires, key)
            self.order.append(mid)
            return True

    def pending(self, n: int, ttl: float | None, delay: float, key: str | None) -> None:
        """A push of payload ``n`` was cancelled in flight: it may have landed, id unknown."""
        with self.lock:
            self.pending_n[n] = (ttl, delay, key)

    def adopt(self, mid: str, n: int | None) -> bool:
        """Enter ``mid`` if it carries the payload of a push cancelled in flight."""
        with self.lock:
            if n is None or n not in self.pending_n:
                return False
            ttl, delay, key = self.pending_n.pop(n)
        return self.push(mid, n, ttl, delay, key) or True

    def delivered(self, mid: str, attempts: int, who: str, n: int | None = None) -> None:
        """A message reached application code: never twice at one attempt (but after a
        requeue_dead), never past max_attempts, never after a cancel that returned True.
        Deliveries are entered as their takers see them, not always in the order they
        happened (a close racing a take enters what the take brought once both are done,
        and a Worker may meanwhile be given it at the next attempt), so their order is not
        judged: a run that went uncounted shows as an attempt number given twice. One
        entered while a requeue_dead runs may be of the message's life before or after
        it, and is not judged."""
        with self.lock:
            self.deliveries += 1
            if mid not in self.pushed:  # yet: a Worker may run it before push() returns
                self.unknown[mid] = (who, n)
            if mid in self.cancelled:
                self.errors.append(f"{who} was given {mid} after cancel() returned True")
            if attempts > self.max_attempts:
                self.errors.append(
                    f"{who} was given {mid} at attempt {attempts} > max_attempts "
                    f"{self.max_attempts}"
                )
            revivals, numbers = self.attempts.get(mid, (self.revivals, set()))
            if revivals != self.revivals:  # requeue_dead gave it a fresh count
                numbers = set()
            if attempts in numbers and not self.reviving:
                self.errors.append(
                    f"{who} was given {mid} at attempt {attempts} again: a run of it went "
                    f"uncounted (its deliveries: {self.history.get(mid)}, "
                    f"{self.revivals} requeue_dead calls)"
                )
            numbers.add(attempts)
            self.attempts[mid] = (self.revivals, numbers)
            self.history.setdefault(mid, []).append(f"{who}@{attempts}/r{self.revivals}")

    @contextmanager
    def requeueing(self) -> Iterator[None]:
        """Around a requeue_dead call, which gives revived messages a fresh count."""
        with self.lock:
            self.revivals += 1
            self.reviving += 1
        try:
            yield
        finally:
            with self.lock:
                self.reviving -= 1
                self.revivals += 1

    def finished(self, mid: str) -> None:
        with self.lock:
            self.handled.add(mid)

    def ack(self, mid: str) -> None:
        with self.lock:
            self.acked.add(mid)
            self.handled.add(mid)

    def deleted(self, mid: str) -> None:
        """Queue.delete returned True for it."""
        with self.lock:
            self.handled.add(mid)

    def maybe_ack(self, mid: str) -> None:
        """An ack cancelled in flight (or failed): it may have reached the server."""
        with self.lock:
            self.handled.add(mid)

    def cancel(self, mid: str, done: bool) -> None:
        with self.lock:
            self.cancel_tried.add(mid)
            if done:
                self.cancelled.add(mid)

    def explained(self) -> set[str]:
        """Ids whose absence from every list needs no further reason."""
        with self.lock:
            return self.handled | self.acked | self.cancelled

    def ttl_lapsed(self, mid: str, now_ms: int) -> bool:
        p = self.pushed[mid]
        return p.expires_ms is not None and now_ms >= p.expires_ms - 50
