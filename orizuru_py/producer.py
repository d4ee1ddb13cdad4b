"""Producer: put messages on a queue, now or after a delay."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from . import envelope, scripts
from .codecs import Codec, MsgpackCodec
from .errors import EncodeError
from .keys import QueueKeys

DEFAULT_MAX_PAYLOAD_BYTES = 1 << 20
_CHUNK = 1000  # messages per round trip in push_many


class Producer:
    """Pushes messages onto one queue. Safe to share between threads.

    A push returns only once Redis has the message; a push that did not reach
    Redis raises (redis-py's ``ConnectionError``/``TimeoutError``), never loses
    silently. After such an error the message may or may not be queued.
    """

    def __init__(
        self,
        r: Any,
        queue: str,
        *,
        codec: Codec | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        prefix: str = "orizuru",
    ) -> None:
        self.keys = QueueKeys(queue, prefix)
        self._queue_key = self.keys.queue
        self.r = r
        self.codec = codec or MsgpackCodec()
        if max_payload_bytes < 1:
            raise ValueError(f"max_payload_bytes must be positive, got {max_payload_bytes}")
        self.max_payload_bytes = max_payload_bytes

    @property
    def queue(self) -> str:
        return self.keys.name

    def push(self, payload: Any, *, delay: float | None = None) -> str:
        """Queue one message (visible after ``delay`` seconds, if given); return its id."""
        delay_ms = to_delay_ms(delay)
        data = self._checked(self.codec.encode(payload))
        now = envelope.now_ms()
        mid = envelope.new_id(now)
        self._send([envelope.encode(mid, now, data)], delay_ms)
        return mid

    def push_many(self, payloads: Iterable[Any], *, delay: float | None = None) -> list[str]:
        """Queue many messages, one round trip per thousand; return their ids in order.

        Every payload is encoded before anything is sent, so a bad one fails the
        call with nothing queued.
        """
        delay_ms = to_delay_ms(delay)
        ids, raws = self._encode(list(payloads))
        for start in range(0, len(raws), _CHUNK):
            self._send(raws[start : start + _CHUNK], delay_ms)
        return ids

    def _encode(self, payloads: list[Any]) -> tuple[list[str], list[bytes]]:
        """Ids and envelopes for ``payloads``, all stamped with this millisecond."""
        encode, checked = self.codec.encode, self._checked
        data = [checked(encode(p)) for p in payloads]
        now = envelope.now_ms()
        ids = envelope.new_ids(len(data), now)
        return ids, [envelope.encode(mid, now, d) for mid, d in zip(ids, data, strict=True)]

    def _checked(self, data: bytes) -> bytes:
        if len(data) > self.max_payload_bytes:
            raise EncodeError(
                f"payload is {len(data)} bytes encoded, "
                f"over max_payload_bytes={self.max_payload_bytes}"
            )
        return data

    def _send(self, raws: list[bytes], delay_ms: int) -> None:
        if not raws:
            return
        if delay_ms:
            scripts.SCHEDULE(self.r, (self.keys.delayed,), (delay_ms, *raws))
        else:
            self.r.execute_command("LPUSH", self._queue_key, *raws)


def to_delay_ms(delay: float | None) -> int:
    """Validate a delay in seconds and return it in whole milliseconds (0: none)."""
    if delay is None:
        return 0
    if not isinstance(delay, int | float) or not math.isfinite(delay) or delay < 0:
        raise ValueError(f"delay must be a non-negative number of seconds, got {delay!r}")
    return int(delay * 1000)
