"""The message on the wire: a fixed header, the id, then the payload.

Layout (version 1)::

    b"OZ" | version (1 byte) | deliveries so far (uint32 BE) | enqueued_ms (uint64 BE)
          | id length (1 byte) | id (ASCII) | payload (what the codec produced)

No msgpack around it: every field sits at a fixed or stated offset, so encoding
is a concatenation, decoding is slicing, and the Lua scripts count a delivery by
rewriting four bytes.
"""

from __future__ import annotations

import itertools
import os
import struct
import time

import attrs

from .errors import DecodeError

MAGIC = b"OZ"
VERSION = 1
_PREFIX = MAGIC + bytes([VERSION])
_FIELDS = struct.Struct(">IQB")  # deliveries, enqueued_ms, id length
_HEADER_LEN = len(_PREFIX) + _FIELDS.size
_U32 = struct.Struct(">I")


@attrs.frozen
class Envelope:
    """One message: ``deliveries`` counts the deliveries before the current one."""

    id: str
    enqueued_ms: int
    payload: bytes
    deliveries: int = 0

    def encode(self) -> bytes:
        return encode(self.id, self.enqueued_ms, self.payload, self.deliveries)

    @classmethod
    def decode(cls, raw: bytes) -> Envelope:
        """Parse ``raw``; raise ``DecodeError`` (carrying ``raw``) if it is not an envelope."""
        return cls(*fields(raw))


def encode(mid: str, enqueued_ms: int, payload: bytes, deliveries: int = 0) -> bytes:
    """Encode one message; the hot path of every push."""
    id_bytes = mid.encode("ascii")
    return _PREFIX + _FIELDS.pack(deliveries, enqueued_ms, len(id_bytes)) + id_bytes + payload


def fields(raw: bytes) -> tuple[str, int, bytes, int]:
    """``(id, enqueued_ms, payload, deliveries)`` of ``raw``, or ``DecodeError``.

    The hot path of every take: slices, and the cheap checks.
    """
    if raw[:3] != _PREFIX or len(raw) < _HEADER_LEN:
        raise DecodeError(_header_problem(raw), raw)
    deliveries, enqueued_ms, n = _FIELDS.unpack_from(raw, 3)
    end = _HEADER_LEN + n
    if n == 0 or len(raw) < end:
        raise DecodeError("malformed envelope: the id is empty or runs past the end", raw)
    try:
        mid = raw[_HEADER_LEN:end].decode("ascii")
    except UnicodeDecodeError:
        raise DecodeError("malformed envelope: the id is not ASCII", raw) from None
    return mid, enqueued_ms, raw[end:], deliveries


def _header_problem(raw: bytes) -> str:
    if raw[:2] != MAGIC:
        return "not an orizuru envelope (bad magic)"
    if len(raw) > 2 and raw[2] != VERSION:
        return f"unknown envelope format version {raw[2]}"
    return "truncated envelope header"


def with_deliveries(raw: bytes, deliveries: int) -> bytes:
    """The same message with its delivery count replaced (for retries)."""
    return _PREFIX + _U32.pack(deliveries) + raw[len(_PREFIX) + 4 :]


_node = os.urandom(6).hex()
_counter = itertools.count()


def _reseed() -> None:
    global _node, _counter
    _node = os.urandom(6).hex()
    _counter = itertools.count()


os.register_at_fork(after_in_child=_reseed)


def new_id(now_ms: int | None = None) -> str:
    """A unique, time-ordered id: 12 hex digits of ms, 12 of process node, 6 of counter."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    return f"{ms:012x}{_node}{next(_counter) & 0xFFFFFF:06x}"


def new_ids(n: int, now_ms: int | None = None) -> list[str]:
    """``n`` ids stamped with one millisecond (the stamp is formatted once)."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    stamp = f"{ms:012x}{_node}"
    return [f"{stamp}{c & 0xFFFFFF:06x}" for c in itertools.islice(_counter, n)]


def now_ms() -> int:
    return time.time_ns() // 1_000_000
