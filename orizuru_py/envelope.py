"""The message on the wire: a fixed header, the id, then the payload.

Layout::

    b"OZ" | version (1 byte) | deliveries so far (uint32 BE) | enqueued_ms (uint64 BE)
          | id length (1 byte) | id (ASCII)
          | (version 2 only) extensions length (uint16 BE) | extensions
          | payload (what the codec produced)

A plain message is version 1. A message pushed with a unique key, a ttl or a
trace context is version 2: its extensions are (tag, uint16 length, value)
triples, tag 1 the unique key (UTF-8), tag 2 the time it expires (uint64 ms, the
producer's clock), tag 3 the trace context (opaque here: what orizuru_py.otel
stores, written first). A reader skips a tag it does not know.
No msgpack around it: encoding is a concatenation, decoding is slicing, and the
Lua scripts count a delivery by rewriting four bytes at the same place in both.
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
VERSION = 1  # of a plain message; 2 carries extensions
_V1, _V2 = MAGIC + b"\x01", MAGIC + b"\x02"
_FIELDS = struct.Struct(">IQB")  # deliveries, enqueued_ms, id length
_HEADER_LEN = len(_V1) + _FIELDS.size
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
    id_bytes = mid.encode("ascii")
    head = _FIELDS.pack(deliveries, enqueued_ms, len(id_bytes)) + id_bytes
    if unique_key is None and expires_ms is None and trace is None:
        return _V1 + head + payload
    ext = b"" if trace is None else _trace_extension(trace)
    if unique_key is not None:
        key = unique_key.encode()
        ext += bytes([_TAG_UNIQUE]) + _U16.pack(len(key)) + key
    if expires_ms is not None:
        ext += bytes([_TAG_EXPIRES]) + _U16.pack(8) + _U64.pack(expires_ms)
    return _V2 + head + _U16.pack(len(ext)) + ext + payload


def encode_many(
    ids: Sequence[str], enqueued_ms: int, payloads: Sequence[bytes], trace: bytes | None = None
) -> list[bytes]:
    """``encode(mid, enqueued_ms, payload, trace=trace)`` of each: the hot path of
    ``push_many``. The header is packed once per id length (one for ids from ``new_ids``)."""
    version = _V1
    if trace is not None:  # the same extensions before every payload
        ext = _trace_extension(trace)
        version, payloads = _V2, [_U16.pack(len(ext)) + ext + p for p in payloads]
    heads: dict[int, bytes] = {}
    out = []
    for mid, payload in zip(ids, payloads, strict=True):
        id_bytes = mid.encode("ascii")
        head = heads.get(len(id_bytes))
        if head is None:
            head = heads[len(id_bytes)] = version + _FIELDS.pack(0, enqueued_ms, len(id_bytes))
        out.append(head + id_bytes + payload)
    return out


def _trace_extension(trace: bytes) -> bytes:
    if len(trace) > 0xFFFF:
        raise ValueError(f"a trace context of {len(trace)} bytes does not fit an extension")
    return bytes([_TAG_TRACE]) + _U16.pack(len(trace)) + trace


def parse(raw: bytes) -> Parsed:
    """What ``raw`` carries (see ``Parsed``), or ``DecodeError``: the hot path of every take."""
    version = raw[:3]
    if (version != _V1 and version != _V2) or len(raw) < _HEADER_LEN:
        raise DecodeError(_header_problem(raw), raw)
    deliveries, enqueued_ms, n = _FIELDS.unpack_from(raw, 3)
    end = _HEADER_LEN + n
    if n == 0 or len(raw) < end:
        raise DecodeError("malformed envelope: the id is empty or runs past the end", raw)
    try:
        mid = raw[_HEADER_LEN:end].decode("ascii")
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
    if raw[:3] != _V2 or len(raw) < _HEADER_LEN:
        return None
    try:
        tags, _ = _walk(raw, _HEADER_LEN + raw[_HEADER_LEN - 1])
    except DecodeError:
        return None
    return next((value for tag, value in tags if tag == _TAG_TRACE), None)


def _header_problem(raw: bytes) -> str:
    if raw[:2] != MAGIC:
        return "not an orizuru envelope (bad magic)"
    if len(raw) > 2 and raw[2] not in (1, 2):
        return f"unknown envelope format version {raw[2]}"
    return "truncated envelope header"


def message_id(raw: bytes) -> str | None:
    """The id of an envelope without parsing the rest (None if ``raw`` is not one)."""
    if raw[:2] != MAGIC or len(raw) < _HEADER_LEN:
        return None
    end = _HEADER_LEN + raw[_HEADER_LEN - 1]
    return raw[_HEADER_LEN:end].decode("ascii", "replace") if len(raw) >= end else None


def packed_ids(raws: Iterable[bytes]) -> bytes:
    """The ids of envelopes as the scripts take them in one argument: each its length
    (one byte) and its bytes, sliced straight from the envelope, which stores it so."""
    return b"".join([raw[15 : 16 + raw[15]] for raw in raws])


def with_deliveries(raw: bytes, deliveries: int) -> bytes:
    """The same message with its delivery count replaced."""
    return raw[:3] + _U32.pack(deliveries) + raw[7:]


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
