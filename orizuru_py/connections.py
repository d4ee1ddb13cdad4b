"""The one connection a driver keeps between its requests.

Checking a connection out of redis-py's pool and back in costs a request about 12 us
of client CPU (a fork check each way, metrics, a poll of the socket for stale data;
on asyncio, a lock and the metrics' awaits): as much as a third of what a ``next()``
and its ``ack()`` cost us beyond the raw commands. A driver keeps the connection of
its last request instead (of a plain ``ConnectionPool``: see ``KeptConnection``), so
one client request in flight at a time never goes through the pool. Requests that
overlap (a worker's threads or tasks) take others from the pool as before. The peak
number of connections does not grow: a consumer holds one while it blocks in BLMOVE
anyway.

The kept connection is clean: a driver reads every reply of a request or drops the
connection; one idle long enough for the server to have closed it is looked at before
the next write, as the pool looks. It goes back to the pool when the driver is
garbage collected, and is forgotten (never used) in a forked child, as the pool
forgets its parent's sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from redis import ConnectionPool
from redis.asyncio import ConnectionPool as AsyncConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

LOOK_AFTER = 0.1  # seconds idle after which a kept connection is looked at before a write
_CLOSED = (RedisConnectionError, RedisTimeoutError, OSError)


class KeptConnection:
    """At most one idle connection of a pool, for its owner's next request. Only a plain
    ``ConnectionPool``'s, of either API: a pool of another kind decides at each check-out
    (a Sentinel pool hands out connections to the primary of the moment, and drops the
    ones to a demoted primary when they come back; a blocking pool makes others wait),
    so it is asked every time. ``give_back`` returns a connection to the pool when the
    owner is collected."""

    def __init__(self, owner: object, pool: Any, give_back: Callable[[Any], None]) -> None:
        self.pool = pool
        self.keeps = type(pool) in (ConnectionPool, AsyncConnectionPool)
        self._conn: Any = None
        self._since = 0.0  # when the kept one was last used
        self._lock = threading.Lock()
        _every.add(self)
        finalizer = weakref.finalize(owner, self._give_back, give_back)
        finalizer.atexit = False  # at exit the sockets close anyway

    def take(self) -> tuple[Any, bool]:
        """The kept connection, or None (take one from the pool); and whether it sat idle
        long enough for the server to have closed it (a restart, an idle timeout): then
        look before writing. A poll of the socket cost a blocking next + ack 7 us, so
        back-to-back requests skip it; the server closing one in that window costs a
        write that fails and is retried as the client's retry policy says."""
        with self._lock:
            conn, self._conn = self._conn, None
        return conn, conn is not None and time.monotonic() - self._since >= LOOK_AFTER

    def put(self, conn: Any) -> bool:
        """Keep ``conn`` for the next request. False when it is not kept (one is already,
        or this pool's never are): the caller gives it back to the pool."""
        if not self.keeps:
            return False
        with self._lock:
            if self._conn is not None:
                return False
            self._conn, self._since = conn, time.monotonic()
        return True

    def _give_back(self, give_back: Callable[[Any], None]) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            give_back(conn)

    def _forget(self) -> None:
        self._conn = None
        self._lock = threading.Lock()


def closed(conn: Any) -> bool:
    """Whether the server closed this idle blocking connection (never data of ours: every
    reply was read)."""
    try:
        return bool(conn.can_read())
    except _CLOSED:
        return True


async def closed_async(conn: Any) -> bool:
    """``closed`` for an asyncio connection (it reads the stream's state, no syscall)."""
    look = getattr(conn, "can_read", None) or conn.can_read_destructive  # redis-py < 8
    try:
        return bool(await look())
    except _CLOSED:
        return True


class AsyncGiveBack:
    """Gives a kept asyncio connection back from a finalizer, which cannot await: the
    release runs as a task on the loop the connection was last used on (``loop``), or
    nowhere once that loop is closed (its connections are of no use to another)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.loop: asyncio.AbstractEventLoop | None = None

    def __call__(self, conn: Any) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # closed meanwhile
            loop.call_soon_threadsafe(_release, self.pool, conn)


_releasing: set[asyncio.Task[None]] = set()  # held until done (the loop keeps weak refs)


def _release(pool: Any, conn: Any) -> None:
    task = asyncio.ensure_future(pool.release(conn))
    _releasing.add(task)
    task.add_done_callback(_releasing.discard)


_every: weakref.WeakSet[KeptConnection] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked child must not write to its parent's sockets: forget every kept one."""
    for kept in list(_every):
        kept._forget()


os.register_at_fork(after_in_child=_after_fork_in_child)
