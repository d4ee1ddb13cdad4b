"""What the fault tests' handlers record in Redis, and how every process connects.

The ledger keys carry no hash tag of the queue, so ``keys_of(r, queue)`` never
sees them: the queue's own keys must still come back to nothing at the end.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis

CLIENT_STYLES = ("url", "kwargs")


def connect(url: str, style: str = "url") -> redis.Redis:
    """A client as a user would make one. ``url``: ``Redis.from_url`` (redis-py 8.1 gives it
    no retries); ``kwargs``: ``Redis(host=, port=)``, whose default policy silently retries a
    command up to 10 times after a connection error."""
    if style == "url":
        return redis.Redis.from_url(url)
    if style == "kwargs":
        parts = urlsplit(url)
        return redis.Redis(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            db=int(parts.path.strip("/") or 0),
        )
    raise ValueError(f"client style must be one of {CLIENT_STYLES}, got {style!r}")


class Ledger:
    """Handled message ids (a set), handling events (a set of unique tokens, so a retried
    write is not counted twice) and acks that came too late (a counter)."""

    def __init__(self, r: Any, queue: str) -> None:
        self.r = r
        self.handled_key = f"faults-ledger:{queue}:handled"
        self.events_key = f"faults-ledger:{queue}:events"
        self.late_key = f"faults-ledger:{queue}:late"

    def record(self, message_id: str, token: str) -> None:
        """One handling of a message; both writes land or neither does."""
        pipe = self.r.pipeline(transaction=True)
        pipe.sadd(self.handled_key, message_id)
        pipe.sadd(self.events_key, token)
        pipe.execute()

    def late(self) -> None:
        """An ack returned False: the GC had taken the message back meanwhile."""
        self.r.incr(self.late_key)

    def handled(self) -> int:
        return int(self.r.scard(self.handled_key))

    def handled_ids(self) -> set[str]:
        return {m.decode() for m in self.r.sscan_iter(self.handled_key, count=10_000)}

    def events(self) -> int:
        return int(self.r.scard(self.events_key))

    def late_acks(self) -> int:
        return int(self.r.get(self.late_key) or 0)

    def clear(self) -> None:
        self.r.delete(self.handled_key, self.events_key, self.late_key)
