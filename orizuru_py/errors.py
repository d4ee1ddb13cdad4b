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
