"""The message on the wire: a fixed header, the id, then the payload.

Layout of what this version writes (20 bytes before the payload)::

    b"OZ" | version (1 byte: 3, or 4 with extensions) | deliveries so far (uint16 BE)
          | id (15 bytes: enqueued_ms uint48 BE, process node 6 bytes, counter 3 bytes)
          | (version 4 only) extensions length (uint16 BE) | extensions
          | payload (what the codec produced)

The id is stored as its 15 bytes; everywhere else (guards, cancel marks, unique
keys, tools) it is the 30 hex digits ``new_id`` makes, and the time the message
was pushed is the id's first 6 bytes. The delivery count stops at 65,535.

What earlier versions wrote is still read (version 1, or 2 with extensions)::

    b"OZ" | version | deliveries (uint32 BE) | enqueued_ms (uint64 BE)
          | id length (1 byte) | id (ASCII) | (version 2) extensions | payload

Extensions are (tag, uint16 length, value) triples: tag 1 the unique key (UTF-8),
tag 2 the time it expires (uint64 ms, the producer's clock), tag 3 the trace
context (opaque here: what orizuru_py.otel stores, written first). A reader skips a
tag it does not know. No msgpack around it: encoding is a concatenation, decoding
is slicing, and the Lua scripts count a delivery by rewriting the count in place.
"""

from __future__ import annotations

import itertools
import os
import struct
import time
from collections.abc import Iterable, Sequence

import attrs

from .errors import DecodeError

MAGIC = b"OZ"
TOMBSTONE = b"\0orizuru-removed\0"  # what a message deleted deep in a long list leaves
VERSION = 3  # of a plain message; 4 carries extensions (1 and 2: earlier, still read)
_V1, _V2, _V3, _V4 = (MAGIC + bytes([v]) for v in (1, 2, 3, 4))
ID_BYTES = 15  # of an id from new_id: 30 hex digits
MAX_DELIVERIES = 0xFFFF  # what the count of a version 3 or 4 message stops at
_FIELDS = struct.Struct(">IQB")  # versions 1 and 2: deliveries, enqueued_ms, id length
# Versions 3 and 4: the version, deliveries, the id's ms (16 + 32 bits), in one unpack.
_HEAD_V3 = struct.Struct(">3sHHI")
_OLD_HEADER_LEN = len(_V1) + _FIELDS.size  # versions 1 and 2, before the id
_HEADER_LEN = len(_V3) + 2 + ID_BYTES  # versions 3 and 4, up to the extensions
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_TAG_UNIQUE, _TAG_EXPIRES, _TAG_TRACE = 1, 2, 3


# What ``parse`` returns: id, enqueued_ms, deliveries so far, unique key, expiry (ms),
# payload. A plain tuple: it is built for every message taken.
Parsed = tuple[str, int, int, str | None, int | None, bytes]


@attrs.frozen
class Envelope:
    """One whole message: ``deliveries`` counts the deliveries before the current one.
    (Takes use ``parse``, which builds no object but a tuple.)"""

    id: str
    enqueued_ms: int
    payload: bytes
    deliveries: int = 0
    unique_key: str | None = None
    expires_ms: int | None = None
    trace: bytes | None = None

    def encode(self) -> bytes:
        return encode(*attrs.astuple(self))

    @classmethod
    def decode(cls, raw: bytes) -> Envelope:
        """Parse ``raw``; raise ``DecodeError`` (carrying ``raw``) if it is not an envelope."""
        mid, enqueued_ms, deliveries, unique_key, expires_ms, payload = parse(raw)
        trace = trace_context(raw)
        return cls(mid, enqueued_ms, payload, deliveries, unique_key, expires_ms, trace)


def _binary_id(mid: str, enqueued_ms: int) -> bytes | None:
    """The 15 bytes of an id ``new_id`` made at ``enqueued_ms``; None for any other id
    (which only the earlier layout can carry)."""
    if len(mid) != 2 * ID_BYTES:
        return None
    try:
        binary = bytes.fromhex(mid)
    except ValueError:
        return None
    if binary.hex() != mid or int.from_bytes(binary[:6], "big") != enqueued_ms:
        return None
    return binary


def encode(
    mid: str,
    enqueued_ms: int,
    payload: bytes,
    deliveries: int = 0,
    unique_key: str | None = None,
    expires_ms: int | None = None,
    trace: bytes | None = None,
) -> bytes:
    """Encode one message; a plain one (no unique key, no expiry, no trace) is the hot path."""
    binary = _binary_id(mid, enqueued_ms)
    if binary is not None:
        head = _U16.pack(min(deliveries, MAX_DELIVERIES)) + binary
        plain, extended = _V3, _V4
    else:
        id_bytes = mid.encode("ascii")
        head = _FIELDS.pack(deliveries, enqueued_ms, len(id_bytes)) + id_bytes
        plain, extended = _V1, _V2
    if unique_key is None and expires_ms is None and trace is None:
        return plain + head + payload
    ext = b"" if trace is None else _trace_extension(trace)
    if unique_key is not None:
        key = unique_key.encode()
        ext += bytes([_TAG_UNIQUE]) + _U16.pack(len(key)) + key
    if expires_ms is not None:
        ext += bytes([_TAG_EXPIRES]) + _U16.pack(8) + _U64.pack(expires_ms)
    return extended + head + _U16.pack(len(ext)) + ext + payload


def new_messages(
    payloads: Sequence[bytes], enqueued_ms: int, trace: bytes | None = None
) -> tuple[list[str], list[bytes]]:
    """Ids (as ``new_ids(len(payloads), enqueued_ms)`` makes them) and their envelopes
    (``encode(mid, enqueued_ms, payload, trace=trace)`` of each): the hot path of
    ``push_many``, which makes each id's digits and bytes from one counter value."""
    stamp = enqueued_ms.to_bytes(6, "big") + _node_bytes
    digits = stamp.hex()
    head = _V3 + b"\0\0" + stamp
    if trace is not None:  # the same extensions before every payload
        ext = _trace_extension(trace)
        head, payloads = _V4 + b"\0\0" + stamp, [_U16.pack(len(ext)) + ext + p for p in payloads]
    counters = [c & 0xFFFFFF for c in itertools.islice(_counter, len(payloads))]
    ids = [f"{digits}{c:06x}" for c in counters]
    raws = [head + c.to_bytes(3, "big") + p for c, p in zip(counters, payloads, strict=True)]
    return ids, raws


def _trace_extension(trace: bytes) -> bytes:
    if len(trace) > 0xFFFF:
        raise ValueError(f"a trace context of {len(trace)} bytes does not fit an extension")
    return bytes([_TAG_TRACE]) + _U16.pack(len(trace)) + trace


def parse(raw: bytes) -> Parsed:
    """What ``raw`` carries (see ``Parsed``), or ``DecodeError``: the hot path of every take."""
    if len(raw) >= _HEADER_LEN:
        version, deliveries, high, low = _HEAD_V3.unpack_from(raw)
        if version == _V3:
            payload = raw[_HEADER_LEN:]
            return raw[5:_HEADER_LEN].hex(), high << 32 | low, deliveries, None, None, payload
        if version == _V4:
            unique_key, expires_ms, payload = _extensions(raw, _HEADER_LEN)
            mid = raw[5:_HEADER_LEN].hex()
            return mid, high << 32 | low, deliveries, unique_key, expires_ms, payload
    version = raw[:3]
    if (version != _V1 and version != _V2) or len(raw) < _OLD_HEADER_LEN:
        raise DecodeError(_header_problem(raw), raw)
    deliveries, enqueued_ms, n = _FIELDS.unpack_from(raw, 3)
    end = _OLD_HEADER_LEN + n
    if n == 0 or len(raw) < end:
        raise DecodeError("malformed envelope: the id is empty or runs past the end", raw)
    try:
        mid = raw[_OLD_HEADER_LEN:end].decode("ascii")
    except UnicodeDecodeError:
        raise DecodeError("malformed envelope: the id is not ASCII", raw) from None
    if version == _V1:
        return mid, enqueued_ms, deliveries, None, None, raw[end:]
    unique_key, expires_ms, payload = _extensions(raw, end)
    return mid, enqueued_ms, deliveries, unique_key, expires_ms, payload


def _extensions(raw: bytes, at: int) -> tuple[str | None, int | None, bytes]:
    tags, end = _walk(raw, at)
    unique_key = expires_ms = None
    for tag, value in tags:
        if tag == _TAG_UNIQUE:
            unique_key = value.decode("utf-8", "replace")
        elif tag == _TAG_EXPIRES and len(value) == 8:
            (expires_ms,) = _U64.unpack(value)
    return unique_key, expires_ms, raw[end:]


def _walk(raw: bytes, at: int) -> tuple[list[tuple[int, bytes]], int]:
    """The (tag, value) extensions of a version 2 envelope whose extensions start at
    ``at``, and where its payload starts; ``DecodeError`` when they are malformed."""
    if len(raw) < at + 2:
        raise DecodeError("malformed envelope: truncated extensions", raw)
    (length,) = _U16.unpack_from(raw, at)
    at += 2
    end = at + length
    if len(raw) < end:
        raise DecodeError("malformed envelope: the extensions run past the end", raw)
    tags = []
    while at < end:
        if at + 3 > end:
            raise DecodeError("malformed envelope: a truncated extension", raw)
        tag, (size,) = raw[at], _U16.unpack_from(raw, at + 1)
        value = raw[at + 3 : at + 3 + size]
        if len(value) != size:
            raise DecodeError("malformed envelope: an extension runs past the end", raw)
        tags.append((tag, value))
        at += 3 + size
    return tags, end


def trace_context(raw: bytes) -> bytes | None:
    """The trace context ``raw`` carries (None when it carries none, or is no well-formed
    envelope). Only tracing asks: parsing a message never looks for it."""
    version = raw[:3]
    if version == _V4 and len(raw) >= _HEADER_LEN:
        at = _HEADER_LEN
    elif version == _V2 and len(raw) >= _OLD_HEADER_LEN:
        at = _OLD_HEADER_LEN + raw[_OLD_HEADER_LEN - 1]
    else:
        return None
    try:
        tags, _ = _walk(raw, at)
    except DecodeError:
        return None
    return next((value for tag, value in tags if tag == _TAG_TRACE), None)


def _header_problem(raw: bytes) -> str:
    if raw[:2] != MAGIC:
        return "not an orizuru envelope (bad magic)"
    if len(raw) > 2 and raw[2] not in (1, 2, 3, 4):
        return f"unknown envelope format version {raw[2]}"
    return "truncated envelope header"


def message_id(raw: bytes) -> str | None:
    """The id of an envelope without parsing the rest (None if ``raw`` is not one)."""
    if raw[:2] != MAGIC or len(raw) < 3:
        return None
    if raw[2] in (3, 4):
        return raw[5:_HEADER_LEN].hex() if len(raw) >= _HEADER_LEN else None
    if len(raw) < _OLD_HEADER_LEN:
        return None
    end = _OLD_HEADER_LEN + raw[_OLD_HEADER_LEN - 1]
    return raw[_OLD_HEADER_LEN:end].decode("ascii", "replace") if len(raw) >= end else None


def enqueued_ms(head: bytes) -> int | None:
    """When the message whose first bytes are ``head`` (15 are enough) was pushed: its
    id's first 6 bytes, or in the earlier layout the uint64 after the delivery count;
    None if ``head`` is no envelope. For tools that read only a message's first bytes."""
    if head[:2] != MAGIC or len(head) < 15:
        return None
    if head[2] in (3, 4):
        return int.from_bytes(head[5:11], "big")
    if head[2] in (1, 2):
        return int(_U64.unpack_from(head, 7)[0])
    return None


def packed_ids(raws: Iterable[bytes]) -> bytes:
    """The ids of envelopes as the scripts take them in one argument: each its length
    (one byte) and its bytes, sliced from the envelope; a 15-byte id of version 3 or 4
    has the length byte 0 (no id of the earlier layout is empty), so a script can tell
    it from an ASCII id of 15 characters."""
    return b"".join(
        [b"\0" + raw[5:_HEADER_LEN] if raw[2] >= 3 else raw[15 : 16 + raw[15]] for raw in raws]
    )


def with_deliveries(raw: bytes, deliveries: int) -> bytes:
    """The same message with its delivery count replaced (stopping at 65,535 in the
    layout that stores it in two bytes)."""
    if raw[2] >= 3:
        return raw[:3] + _U16.pack(min(deliveries, MAX_DELIVERIES)) + raw[5:]
    return raw[:3] + _U32.pack(deliveries) + raw[7:]


_node_bytes = os.urandom(6)  # this process's, in every id it makes
_node = _node_bytes.hex()
_counter = itertools.count()


def _reseed() -> None:
    global _node_bytes, _node, _counter
    _node_bytes = os.urandom(6)
    _node = _node_bytes.hex()
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
