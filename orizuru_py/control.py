"""Control: a worker's starts and acks, from all its threads or tasks, sent together.

A thread (task) that finished messages leaves their acks here and goes on; one that
has a chunk to start leaves it here and waits for its ticket. One control loop sends
whatever has gathered in one round trip, then sends whatever gathered meanwhile: a
group commit, with no timer. So a worker's round trips grow with its load, not with
its messages, and an ack still leaves within a round trip. A start is in Redis
before its ticket is done, so before its handler runs.
"""

from __future__ import annotations

import threading
from typing import Any

import attrs

from .guard import GuardCore
from .lanes import Lane
from .plan import Request


@attrs.define(eq=False)
class Ticket:
    """A chunk of ``lane`` waiting to be started; ``started``: those to run, once done."""

    lane: Lane
    chunk: list[GuardCore]
    started: list[GuardCore] = attrs.field(factory=list)
    done: bool = False
    waiter: Any = None  # what the driver waits on, once a loop waits for it


@attrs.frozen
class Wait(Request):
    """Wait until ``ticket`` is done (at once if it is)."""

    ticket: Ticket


@attrs.frozen
class Wake(Request):
    """Mark ``tickets`` done and wake whoever waits for them."""

    tickets: tuple[Ticket, ...]


class Control:
    """What the loops of one worker left to send: acks by lane, and tickets to start."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._acks: dict[Lane, list[GuardCore]] = {}
        self._tickets: list[Ticket] = []
        self.closed = False  # no loop will leave anything more: send the rest and end
        self.acking = 0  # acks left here and not yet sent (or given up on)

    def ack(self, lane: Lane, guards: list[GuardCore]) -> None:
        with self._lock:
            self._acks.setdefault(lane, []).extend(guards)
            self.acking += len(guards)

    def sent(self, n: int) -> None:
        """``n`` acks taken from here went (or were given up on)."""
        with self._lock:
            self.acking -= n

    def start(self, lane: Lane, chunk: list[GuardCore]) -> Ticket:
        ticket = Ticket(lane, chunk)
        with self._lock:
            self._tickets.append(ticket)
        return ticket

    def pending(self) -> bool:
        return bool(self._acks or self._tickets)

    def take(self) -> tuple[dict[Lane, list[GuardCore]], list[Ticket]]:
        """Everything left so far, to send now (and nothing left behind)."""
        with self._lock:
            acks, self._acks = self._acks, {}
            tickets, self._tickets = self._tickets, []
        return acks, tickets
