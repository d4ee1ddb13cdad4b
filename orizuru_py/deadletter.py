"""DeadLetter: a record in a queue's dead-letter list, as the Lua scripts write it.

Layout: ``b"OZD\\x01" | len(reason) (uint32) | reason | dead_ms (uint64) | original bytes``.
The original bytes are kept exactly, so nothing is lost and ``revive`` can requeue them.
"""

from __future__ import annotations

import struct

import attrs

from .envelope import Envelope
from .errors import DecodeError

_MAGIC = b"OZD\x01"
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


@attrs.frozen
class DeadLetter:
    """Why and when a message was dead-lettered, and its original bytes."""

    reason: str
    dead_ms: int
    raw: bytes

    @classmethod
    def decode(cls, record: bytes) -> DeadLetter:
        if record[:4] != _MAGIC or len(record) < 8:
            raise DecodeError("not a dead-letter record", record)
        (n,) = _U32.unpack_from(record, 4)
        if len(record) < 16 + n:
            raise DecodeError("truncated dead-letter record", record)
        reason = record[8 : 8 + n].decode("utf-8", "replace")
        (dead_ms,) = _U64.unpack_from(record, 8 + n)
        return cls(reason, dead_ms, record[16 + n :])

    def envelope(self) -> Envelope | None:
        """The message, if the original bytes are an envelope (garbage is not)."""
        try:
            return Envelope.decode(self.raw)
        except DecodeError:
            return None
