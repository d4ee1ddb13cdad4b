"""Every exception orizuru_py raises on purpose."""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError


class OrizuruError(Exception):
    """Base class of orizuru_py's own errors."""


class AlreadySettled(OrizuruError):
    """A guard was acked, rejected, pushed, retried or dead-lettered a second time."""


class EncodeError(OrizuruError, ValueError, TypeError):
    """A payload cannot be encoded (wrong type, or over ``max_payload_bytes``).

    Both a ``ValueError`` and a ``TypeError``, so callers may catch either.
    """


class DecodeError(OrizuruError):
    """Bytes read from Redis are not a message this version can read.

    ``raw`` holds the bytes exactly as they were in Redis.
    """

    def __init__(self, reason: str, raw: bytes) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


class NotConfirmed(OrizuruError):
    """A push was not confirmed in time by ``replicas`` replicas (``WAIT``), or, with
    ``fsync=True``, by the append-only file (``WAITAOF``).

    The message may still be queued: retrying may duplicate it, never lose it.
    ``ids`` are the messages of the call, ``replicas_reached`` how many replicas
    acknowledged the write, ``local_fsync`` whether the primary's AOF had it.
    """

    def __init__(self, ids: list[str], replicas_reached: int, *, local_fsync: bool = True) -> None:
        super().__init__(
            f"{len(ids)} message(s) not confirmed: {replicas_reached} replica(s) acknowledged"
            + ("" if local_fsync else ", not yet in the primary's append-only file")
        )
        self.ids = ids
        self.replicas_reached = replicas_reached
        self.local_fsync = local_fsync


class RateLimited(OrizuruError):
    """Raised by a handler (the API it calls answered 429, say): its message comes back
    in ``retry_after`` seconds without counting an attempt, and the Worker's rate limiter
    for it (the queue's, or its key's) lets nothing start meanwhile."""

    def __init__(self, retry_after: float) -> None:
        if (
            not isinstance(retry_after, int | float)
            or isinstance(retry_after, bool)
            or not 0 <= retry_after < 86_400
        ):
            raise ValueError(f"retry_after must be from 0 s to a day, got {retry_after!r}")
        super().__init__(f"rate limited: retry after {retry_after:g} s")
        self.retry_after = float(retry_after)


class TimeLimitExceeded(OrizuruError):
    """A handler ran past the Worker's ``time_limit``: a failed attempt, its late result
    ignored."""


class WorkerCrashed(OrizuruError):
    """A Worker's own thread (or task) died; the worker stopped at once, its heartbeat
    with it, so the garbage collector returns what it held. The cause is chained."""


class ScriptsLost(OrizuruError, RedisConnectionError):
    """The server answered NOSCRIPT to a script loaded a moment before: the load and the
    call reached different servers (a failover moved the primary between them). An
    outage like any other, a ``ConnectionError``: the loops back off and try again."""
