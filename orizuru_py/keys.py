"""Every Redis key of a queue, in one place.

All keys of one queue share the hash tag ``{queue}``, so they live in one Redis
Cluster slot and every script can touch them together::

    {prefix}:{queue}:queue         list   waiting messages (LPUSH in, taken from the right)
    {prefix}:{queue}:unack         list   rejected messages, returned to the queue by the GC
    {prefix}:{queue}:dead          list   dead-letter records (reason, time, original bytes)
    {prefix}:{queue}:delayed       zset   messages scored by the server time (ms) they are due
    {prefix}:{queue}:consumers     zset   consumer name scored by its deadline (server ms)
    {prefix}:{queue}:processing:N  list   messages consumer N holds
"""

from __future__ import annotations

import re

import attrs

MAX_QUEUE_NAME = 200
_FORBIDDEN = re.compile(r"[{}\s\x00-\x1f\x7f]")


def validate_name(value: object, what: str = "queue name") -> str:
    """Return ``value`` if it is a usable queue (or consumer) name, else raise ``ValueError``."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{what} must not be empty")
    if len(value) > MAX_QUEUE_NAME:
        raise ValueError(f"{what} is {len(value)} characters long; the limit is {MAX_QUEUE_NAME}")
    bad = _FORBIDDEN.search(value)
    if bad:
        raise ValueError(
            f"{what} {value!r} contains {bad.group()!r}: braces, white space and control "
            "characters are not allowed (braces would break the Redis Cluster hash tag)"
        )
    return value


def _validate_prefix(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value or _FORBIDDEN.search(value):
        raise ValueError(f"prefix must be a non-empty str without braces or spaces, got {value!r}")


@attrs.frozen
class QueueKeys:
    """The names of one queue's keys under one prefix."""

    name: str = attrs.field(validator=lambda _i, _a, v: validate_name(v))
    prefix: str = attrs.field(default="orizuru", validator=_validate_prefix)

    @property
    def base(self) -> str:
        return f"{self.prefix}:{{{self.name}}}"

    @property
    def queue(self) -> str:
        return f"{self.base}:queue"

    @property
    def unack(self) -> str:
        return f"{self.base}:unack"

    @property
    def dead(self) -> str:
        return f"{self.base}:dead"

    @property
    def delayed(self) -> str:
        return f"{self.base}:delayed"

    @property
    def consumers(self) -> str:
        return f"{self.base}:consumers"

    def processing(self, consumer: str) -> str:
        return f"{self.base}:processing:{consumer}"

    def all_fixed(self) -> tuple[str, ...]:
        """The keys that exist once per queue (not per consumer)."""
        return (self.queue, self.unack, self.dead, self.delayed, self.consumers)
