"""Outage: riding out an unreachable server, with a backoff per loop and one log per client.

Every loop that talks to the server (a consumer's takes, its heartbeat, a collector,
a worker's settling) retries connection errors with its own backoff. What they
log is shared by all the loops of one client: a WARNING when the server is lost,
an INFO when it is back, and in between a reminder at most every ``REMIND`` seconds,
so an outage of a minute reads as three lines, not hundreds.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import weakref
from typing import Any

from .client import Client, where

log = logging.getLogger("orizuru_py")

REMIND = 30.0  # seconds between reminders that the server is still unreachable


class Outage:
    """One client's view of its server's reachability, for the log."""

    def __init__(self, server: str) -> None:
        self.server = server
        self._lock = threading.Lock()
        self.since: float | None = None  # monotonic time the server was lost, while it is
        self._reminded = 0.0

    def lost(self, what: str, exc: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            if self.since is None:
                self.since = self._reminded = now
                log.warning("lost the server %s (%s: %s); retrying with backoff", self.server,
                            what, exc)  # fmt: skip
            elif now - self._reminded >= REMIND:
                self._reminded = now
                log.warning("the server %s is still unreachable after %.0f s (%s: %s)",
                            self.server, now - self.since, what, exc)  # fmt: skip

    def back(self) -> None:
        with self._lock:
            if self.since is not None:
                log.info("the server %s is reachable again after %.1f s", self.server,
                         time.monotonic() - self.since)  # fmt: skip
                self.since = None


_outages: weakref.WeakKeyDictionary[Any, Outage] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def outage_of(r: Client) -> Outage:
    """The outage record shared by every loop on ``r``'s connections."""
    holder = getattr(r, "connection_pool", None) or getattr(r, "nodes_manager", None) or r
    with _registry_lock:
        found = _outages.get(holder)
        if found is None:
            found = _outages[holder] = Outage(where(r))
        return found


class Retrying:
    """One loop's retries: how long to pause after each failure in a row, and the shared
    log of the outage (``what`` says which loop failed)."""

    def __init__(self, r: Client, what: str, *, first: float = 0.05, most: float = 2.0) -> None:
        self.outage = outage_of(r)
        self.what, self.first, self.most = what, first, most
        self.failures = 0

    def failed(self, exc: BaseException) -> float:
        """Note a failure; returns the pause before the next try."""
        self.failures += 1
        self.outage.lost(self.what, exc)
        return self.pause()

    def pause(self) -> float:
        """The pause after the failures so far: exponential, jittered, capped."""
        pause = min(self.most, self.first * 2.0 ** min(max(self.failures - 1, 0), 10))
        return pause * random.uniform(0.5, 1.0)

    def ok(self) -> None:
        """The loop reached the server."""
        if self.failures:
            self.failures = 0
            self.outage.back()
