"""Rate limits shared by every worker of a queue, kept in Redis.

``RateLimit(100, per=1.0)``: at most 100 handler starts in any 1 s window (sliding, as
an API counts its own limit), all workers of the queue together. With ``key``, one
limiter per value the function gives for a payload (a tenant, say): a throttled key
delays no other key. The check is part of the step that starts a chunk
(``start.lua``): one atomic step per start, in the queue's hash slot. A message its
keyed limiter throttles waits on the delayed set until that window frees, without
counting an attempt; one the queue's own limiter throttles goes back to the front of
the queue, and the worker waits until the window frees before it starts anything more.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

import attrs

from . import checks

log = logging.getLogger("orizuru_py.worker")

MAX_KEY = 200  # characters of a limiter key (it becomes part of a Redis key name)
_TEXT = re.compile(r"(\d{1,9})/(\d+(?:\.\d+)?)?([smh])")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
MAX_LIMIT = 10_000  # starts per window: bounds the work of one start step (its log's trim)


def _limit(_i: object, _a: attrs.Attribute[int], value: int) -> None:
    checks.count("limit", value, 1, MAX_LIMIT)


def _window(_i: object, _a: attrs.Attribute[float], value: float) -> None:
    if checks.seconds(value, "per", positive=True, most=86_400) < 0.001:
        raise ValueError(f"per must be at least 0.001 s, got {value!r}")


@attrs.frozen
class RateLimit:
    """At most ``limit`` handler starts in any ``per`` seconds, per ``key(payload)`` if
    given, else for the whole queue."""

    limit: int = attrs.field(validator=_limit)
    per: float = attrs.field(default=1.0, validator=_window)
    key: Callable[[Any], str] | None = attrs.field(default=None)

    @key.validator
    def _callable(self, _a: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not callable(value):
            raise TypeError(f"key must be a function of the payload, got {value!r}")

    @classmethod
    def parse(cls, text: str, key: Callable[[Any], str] | None = None) -> RateLimit:
        """``"100/s"``, ``"5/m"``, ``"1000/h"`` or ``"20/10s"`` (20 per 10 seconds)."""
        found = _TEXT.fullmatch(text.strip())
        if found is None:
            raise ValueError(f"a rate limit is N/s, N/m, N/h or N/SECONDSs, got {text!r}")
        count, seconds, unit = found.groups()
        return cls(int(count), float(seconds or 1) * _UNITS[unit], key)

    @property
    def per_ms(self) -> int:
        return max(1, round(self.per * 1000))

    def name_of(self, payload: Any) -> str:
        """The limiter a payload counts against: "" (the queue's own) without ``key``. A
        key function that fails or gives no usable key counts against the queue's."""
        if self.key is None:
            return ""
        try:
            name = self.key(payload)
        except Exception as exc:
            log.warning("rate limit key function failed (%s); the queue's limiter applies", exc)
            return ""
        if not isinstance(name, str) or not name or len(name) > MAX_KEY:
            log.warning("rate limit key %r is not a str of 1 to %d characters; the queue's "
                        "limiter applies", name, MAX_KEY)  # fmt: skip
            return ""
        return name


class Throttle:
    """When this worker may start again after the queue's own limiter said wait (a start
    it throttled, or a handler's ``RateLimited``): its loops sleep until then, not poll."""

    def __init__(self) -> None:
        self.until = 0.0  # time.monotonic()

    def hold(self, seconds: float) -> None:
        self.until = max(self.until, time.monotonic() + seconds)

    def left(self) -> float:
        return self.until - time.monotonic()
