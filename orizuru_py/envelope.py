"""The message on the wire: a small fixed header, then a msgpack body.

Layout (version 1)::

    b"OZ" | version (1 byte) | deliveries so far (uint32 BE) | msgpack [id, enqueued_ms, payload]

The header is fixed so the Lua scripts can count a delivery by rewriting four
bytes, without a msgpack library. ``payload`` is what the codec produced.
"""

from __future__ import annotations

import itertools
import os
import struct
import time

import attrs
import msgpack

from .errors import DecodeError

MAGIC = b"OZ"
VERSION = 1
_HEADER = MAGIC + bytes([VERSION])
_HEADER_LEN = len(_HEADER) + 4
_FRESH = _HEADER + b"\x00\x00\x00\x00"
_U32 = struct.Struct(">I")
_packb = msgpack.Packer(use_bin_type=True).pack
_unpackb = msgpack.unpackb


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


def fields(raw: bytes) -> tuple[str, int, bytes, int]:
    """``(id, enqueued_ms, payload, deliveries)`` of ``raw``, or ``DecodeError``.

    The hot path of every take: no object is built, and the checks are the cheap ones.
    """
    if raw[:3] != _HEADER or len(raw) < _HEADER_LEN:
        raise DecodeError(_header_problem(raw), raw)
    try:
        mid, enqueued_ms, payload = _unpackb(raw[_HEADER_LEN:])
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise DecodeError(f"malformed envelope body: {exc}", raw) from exc
    if type(mid) is not str or type(enqueued_ms) is not int or type(payload) is not bytes:
        raise DecodeError("malformed envelope body: wrong field types", raw)
    return mid, enqueued_ms, payload, int.from_bytes(raw[3:_HEADER_LEN])


def _header_problem(raw: bytes) -> str:
    if raw[:2] != MAGIC:
        return "not an orizuru envelope (bad magic)"
    if len(raw) > 2 and raw[2] != VERSION:
        return f"unknown envelope format version {raw[2]}"
    return "truncated envelope header"


def encode(mid: str, enqueued_ms: int, payload: bytes, deliveries: int = 0) -> bytes:
    """Encode one message; the hot path of every push."""
    header = _FRESH if deliveries == 0 else _HEADER + _U32.pack(deliveries)
    body: bytes = _packb((mid, enqueued_ms, payload))
    return header + body


def with_deliveries(raw: bytes, deliveries: int) -> bytes:
    """The same message with its delivery count replaced (for retries)."""
    return _HEADER + _U32.pack(deliveries) + raw[_HEADER_LEN:]


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
