"""The one connection a blocking driver keeps between its requests.

Checking a connection out of redis-py's pool and back in costs a request about 12 us
of client CPU (a fork check each way, metrics, a poll of the socket for stale data):
as much as a third of what a ``next()`` and its ``ack()`` cost us beyond the raw
commands. A driver keeps the connection of its last request instead (of a plain
``ConnectionPool``: see ``KeptConnection``), so one client request in flight at a time
never goes through the pool. Requests that overlap (a
worker's threads) take the others from the pool as before. The peak number of
connections does not grow: a consumer holds one while it blocks in BLMOVE anyway.

The kept connection is clean: the driver reads every reply of a request or drops the
connection; one the server closed is noticed before the next write, as the pool
notices it. It goes back to the pool when the driver is garbage collected, and is
forgotten (never used) in a forked child, as the pool forgets its parent's sockets.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Any

from redis import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

LOOK_AFTER = 0.1  # seconds idle after which a kept connection is polled before a write


class KeptConnection:
    """At most one idle connection of ``pool``, for its owner's next request. Only a plain
    ``ConnectionPool``'s: a pool of another kind decides at each check-out (a Sentinel
    pool hands out connections to the primary of the moment, and drops the ones to a
    demoted primary when they come back; a blocking pool makes others wait), so it is
    asked every time."""

    def __init__(self, owner: object, pool: Any) -> None:
        self._pool = pool
        self._keeps = type(pool) is ConnectionPool
        self._conn: Any = None
        self._since = 0.0  # when the kept one was last used
        self._lock = threading.Lock()
        _every.add(self)
        finalizer = weakref.finalize(owner, self.give_back)
        finalizer.atexit = False  # at exit the sockets close anyway

    def take(self) -> Any:
        """The kept connection, or one from the pool. A kept one idle long enough for the
        server to have closed it (a restart, an idle timeout) is looked at first, and if
        closed, connects again on its next write, as the pool would have done. A poll of
        the socket costs a next + ack 7 us, so back-to-back requests skip it: the server
        closing one in that window costs a write that fails and is retried as the
        client's retry policy says."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is None:
            return self._pool.get_connection()
        if time.monotonic() - self._since < LOOK_AFTER:
            return conn
        try:
            closed = conn.can_read()  # never data of ours: every reply was read
        except (RedisConnectionError, RedisTimeoutError, OSError):
            closed = True
        if closed:
            conn.disconnect()
        return conn

    def put(self, conn: Any) -> None:
        """Keep ``conn`` for the next request, or give it back when one is kept already."""
        if self._keeps:
            with self._lock:
                if self._conn is None:
                    self._conn, self._since = conn, time.monotonic()
                    return
        self._pool.release(conn)

    def give_back(self) -> None:
        """Return the kept connection to the pool (the owner is gone)."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.release(conn)

    def _forget(self) -> None:
        self._conn = None
        self._lock = threading.Lock()


_every: weakref.WeakSet[KeptConnection] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked child must not write to its parent's sockets: forget every kept one."""
    for kept in list(_every):
        kept._forget()


os.register_at_fork(after_in_child=_after_fork_in_child)
