"""What ``Queue.peek`` reads: messages left where they are, and of each only its header
and first bytes, so looking at a queue of 50 MB messages reads kilobytes.

The ``peek`` script sends each element's stored size and head; here the head becomes a
``Peeked``. A payload read whole is decoded with the queue's codec; a cut one is not
(no codec decodes a part): its first bytes are kept in ``head`` for a preview.
"""

from __future__ import annotations

import struct
from typing import Any

import attrs

from . import envelope, scripts
from .codecs import Codec
from .errors import DecodeError
from .keys import QueueKeys

WHERE = ("waiting", "delayed", "unacked", "dead")
MAX_PEEK = 1000
MAX_OFFSET = 2**32  # past the longest list Redis keeps
PEEK_BYTES = 4096  # of each payload, by default
_HEADER_ROOM = 2048  # more than any envelope's header (id <= 255 B, unique key <= 1000 B)
_BUDGET = 4 << 20  # bytes one script call may read before it stops (at least one message)
_U64 = struct.Struct(">Q")


@attrs.frozen
class Peeked:
    """A message as ``peek`` shows it; ``error`` says why bytes do not decode.

    ``size`` is what the message takes in Redis. ``truncated``: only the first
    ``max_bytes`` of its payload were read, so ``payload`` is None and ``head`` holds
    those bytes as stored (encoded); ``raw`` is always what was read."""

    id: str | None
    attempts: int | None
    enqueued_ms: int | None
    payload: Any
    raw: bytes = attrs.field(repr=False)
    error: str | None = None
    reason: str | None = None  # dead letters
    dead_ms: int | None = None
    due_ms: int | None = None  # delayed messages
    unique_key: str | None = None
    expires_ms: int | None = None
    size: int = 0
    truncated: bool = False
    head: bytes = attrs.field(default=b"", repr=False)


def check_peek(n: object, where: object, offset: object, max_bytes: object) -> None:
    """Raise ``ValueError`` naming the first bad argument of ``peek``."""
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_PEEK:
        raise ValueError(f"n must be an int from 1 to {MAX_PEEK}, got {n!r}")
    if where not in WHERE:
        raise ValueError(f"where must be one of {', '.join(WHERE)}, got {where!r}")
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise ValueError(f"offset must be an int from 0 to {MAX_OFFSET}, got {offset!r}")
    if max_bytes is not None and (
        not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 1
    ):
        raise ValueError(f"max_bytes must be an int >= 1 or None, got {max_bytes!r}")


async def peek(
    keys: QueueKeys,
    n: int,
    where: str,
    offset: int,
    max_bytes: int | None,
    codec: Codec,
) -> list[Peeked]:
    """Up to ``n`` messages of list ``where`` from ``offset`` on, in script calls of
    bounded work; payloads cut at ``max_bytes`` (None: whole), decoded with ``codec``."""
    key, kind = {
        "waiting": (keys.queue, "list"),
        "delayed": (keys.delayed, "zset"),
        "unacked": (keys.unack, "list"),
        "dead": (keys.dead, "dead"),
    }[where]
    cut = -1 if max_bytes is None else max_bytes + _HEADER_ROOM
    found: list[Peeked] = []
    position = offset
    while len(found) < n and position != -1:
        reply = await scripts.peek(key, kind, position, n - len(found), cut, _BUDGET).run()
        position = int(reply[0])
        found += [_peeked(item, kind, max_bytes, codec) for item in reply[1:]]
    return found


def _peeked(item: list[Any], kind: str, max_bytes: int | None, codec: Codec) -> Peeked:
    size, raw, reason_bytes, reason_size, extra = item
    size, raw = int(size), bytes(raw)
    dead = {}
    if kind == "dead":
        if len(extra) != 8:
            return Peeked(None, None, None, None, raw, "not a dead-letter record", size=size)
        reason = bytes(reason_bytes).decode("utf-8", "replace")
        if int(reason_size) > len(reason_bytes):
            reason += f"… ({int(reason_size):,} bytes)"
        dead = {"reason": reason, "dead_ms": int(_U64.unpack(extra)[0])}
    due = {"due_ms": int(float(extra))} if kind == "zset" else {}
    return _message(raw, size, max_bytes, codec, **dead, **due)


def _message(raw: bytes, size: int, max_bytes: int | None, codec: Codec, **known: Any) -> Peeked:
    try:
        mid, enqueued, deliveries, unique_key, expires_ms, payload = envelope.parse(raw)
    except DecodeError as exc:
        return Peeked(None, None, None, None, raw, exc.reason, size=size, **known)
    stored = size - (len(raw) - len(payload))  # the payload's size in Redis
    fields = dict(raw=raw, size=size, unique_key=unique_key, expires_ms=expires_ms, **known)
    if max_bytes is not None and stored > max_bytes:
        cut = payload[:max_bytes]
        return Peeked(mid, deliveries + 1, enqueued, None, truncated=True, head=cut, **fields)
    try:
        value = codec.decode(payload)
    except Exception as exc:
        error = f"payload does not decode with {type(codec).__name__}: {exc}"
        return Peeked(mid, deliveries + 1, enqueued, None, error=error, **fields)
    return Peeked(mid, deliveries + 1, enqueued, value, **fields)
