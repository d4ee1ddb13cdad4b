"""Every exception orizuru_py raises on purpose."""

from __future__ import annotations


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


class WorkerCrashed(OrizuruError):
    """A Worker's own thread (or task) died; the worker stopped at once, its heartbeat
    with it, so the garbage collector returns what it held. The cause is chained."""
