"""Cadence: when a periodic message is due, a cron expression in a time zone or a fixed
period, reckoned in the server's milliseconds. Pure computation: nothing here talks to
Redis, so the rules of daylight-saving changes are tested without waiting for one.

Cron expressions are read by cronsim, which follows Debian's cron, daylight-saving
quirks included: a time that does not exist (the clock jumps from 02:00 to 03:00) fires
at the first minute after the jump, and a time that happens twice (the clock goes back)
fires once, the first time. Time zones come from ``zoneinfo``: the system's database,
else the ``tzdata`` package (a dependency, for systems without one).
"""

from __future__ import annotations

import time
import zoneinfo
from datetime import datetime
from typing import Any

import attrs
import msgpack
from cronsim import CronSim, CronSimError

from . import checks

DEFAULT_TZ = "UTC"
MAX_CRON = 200  # characters of a cron expression
_VERSION = 1  # of the packed form
_LOOK_AHEAD = 4  # occurrences read to pass one that is not after the start (a repeated hour)


def _cron(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_CRON:
        raise ValueError(f"cron must be a non-empty str of at most {MAX_CRON} characters")
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron {value!r} has {len(fields)} fields; it takes five: minute, hour, "
            "day of month, month, day of week (every= for periods under a minute)"
        )
    return " ".join(fields)


def _zone(value: object) -> zoneinfo.ZoneInfo:
    if not isinstance(value, str) or not value:
        raise ValueError(f"tz must be a time zone name such as 'Europe/Berlin', got {value!r}")
    try:
        return zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"tz {value!r} is no time zone zoneinfo knows ({exc})") from None


@attrs.frozen
class Cadence:
    """A cron expression (five fields) read in time zone ``tz``, or a period ``every_ms``."""

    cron: str | None = None
    tz: str | None = None
    every_ms: int | None = None

    @classmethod
    def of(cls, cron: object = None, every: object = None, tz: object = None) -> Cadence:
        """The cadence of ``add``'s arguments; ``ValueError`` names what is wrong."""
        if (cron is None) == (every is None):
            raise ValueError("give exactly one of cron= (an expression) and every= (seconds)")
        if every is not None:
            if tz is not None:
                raise ValueError("tz= applies to cron= only: a period is the same in every zone")
            every_ms = round(checks.seconds(every, "every", positive=True) * 1000)
            if every_ms < 1:
                raise ValueError(f"every must be at least 0.001 s, got {every!r}")
            return cls(every_ms=every_ms)
        expression = _cron(cron)
        zone = DEFAULT_TZ if tz is None else tz
        _zone(zone)
        try:
            CronSim(expression, datetime(2000, 1, 1))
        except CronSimError as exc:
            raise ValueError(f"cron {expression!r} is not a valid expression: {exc}") from None
        cadence = cls(cron=expression, tz=str(zone))
        if cadence.first(time.time_ns() // 1_000_000) is None:
            raise ValueError(f"cron {expression!r} names no time in the next 50 years")
        return cadence

    def first(self, now_ms: int) -> int | None:
        """When it is first due, after ``now_ms``; None if never (cron: not in 50 years)."""
        if self.every_ms is not None:
            return now_ms + self.every_ms
        return self._after(now_ms)

    def following(self, due_ms: int, now_ms: int) -> int | None:
        """When it is due next after its tick due at ``due_ms`` was pushed at ``now_ms``:
        the first time after both, so ticks missed meanwhile collapse into that one. A
        period keeps its phase (due_ms plus a whole number of periods)."""
        start = max(due_ms, now_ms)
        if self.every_ms is not None:
            return due_ms + ((start - due_ms) // self.every_ms + 1) * self.every_ms
        return self._after(start)

    def _after(self, start_ms: int) -> int | None:
        assert self.cron is not None and self.tz is not None
        start = datetime.fromtimestamp(start_ms / 1000, _zone(self.tz))
        occurrences = CronSim(self.cron, start)
        for _ in range(_LOOK_AHEAD):
            try:
                at = int(next(occurrences).timestamp() * 1000)
            except StopIteration:
                return None
            # In a repeated hour cronsim reckons in local time, and answers the first pass
            # of a time the start is already past: read on to the next one.
            if at > start_ms:
                return at
        return None

    def describe(self) -> str:
        """``0 3 * * * (Europe/Berlin)`` or ``every 10s``."""
        if self.every_ms is not None:
            return f"every {self.every_ms / 1000:g}s"
        return f"{self.cron} ({self.tz})"

    def to_json(self) -> dict[str, Any]:
        every = None if self.every_ms is None else self.every_ms / 1000
        return {"cron": self.cron, "tz": self.tz, "every": every}

    def pack(self) -> bytes:
        """As stored: the same cadence always packs to the same bytes."""
        packed: bytes = msgpack.packb([_VERSION, self.cron, self.tz, self.every_ms])
        return packed

    @classmethod
    def unpack(cls, raw: bytes) -> Cadence:
        """A stored cadence, checked as ``add`` checks one: whatever could write the key
        may have written anything; ``ValueError`` says what is wrong."""
        try:
            fields = msgpack.unpackb(raw, raw=False)
        except Exception as exc:  # msgpack raises several kinds on garbage
            raise ValueError(f"the stored cadence is not msgpack ({exc})") from None
        if not isinstance(fields, list) or len(fields) != 4 or fields[0] != _VERSION:
            raise ValueError("the stored cadence is not one this version wrote")
        _, cron, tz, every_ms = fields
        every = every_ms / 1000 if isinstance(every_ms, int) else every_ms
        cadence = cls.of(cron, every, tz if every is None else None)
        if cadence.every_ms not in (None, every_ms):
            raise ValueError(f"the stored period {every_ms!r} is not a whole number of ms")
        return cadence
