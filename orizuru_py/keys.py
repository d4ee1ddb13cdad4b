"""Every Redis key of a queue, in one place.

All keys of one queue share the hash tag ``{queue}``, so they live in one Redis
Cluster slot and every script can touch them together::

    {prefix}:{queue}:queue           list    waiting messages (LPUSH in, taken from the right)
    {prefix}:{queue}:delayed         zset    messages scored by the server time (ms) they are due
    {prefix}:{queue}:unack           list    rejected messages, returned to the queue by the GC
    {prefix}:{queue}:dead            list    dead-letter records (reason, time, original bytes)
    {prefix}:{queue}:consumers       zset    consumer id scored by its deadline (server ms)
    {prefix}:{queue}:info            hash    consumer id -> what it published with its last beat
    {prefix}:{queue}:prefetch:ID     list    taken by worker ID, not yet handed to a handler
    {prefix}:{queue}:processing:ID   list    handed to consumer ID's application code
    {prefix}:{queue}:paused          string  present while the queue is paused
    {prefix}:{queue}:unique          hash    unique key -> id of the live message pushed with it
    {prefix}:{queue}:unique_expiry   zset    unique key scored by when it lapses (server ms)
    {prefix}:{queue}:cancel          hash    message id -> state of its cancellation
    {prefix}:{queue}:counts          hash    totals: expired, cancelled, reaped, recovered
    {prefix}:{queue}:rate[:KEY]      zset    a rate limiter's starts in its window (ms), per key
    {prefix}:{queue}:rate_pause[:KEY] string present while RateLimited paused that limiter
    {prefix}:{queue}:throttled       hash    limiter key ("" the queue's) -> when it frees (ms)
    {prefix}:{queue}:schedule        hash    periodic entry name -> its cadence (``Schedule``)
    {prefix}:{queue}:schedule_payload hash   periodic entry name -> its payload, encoded
    {prefix}:{queue}:schedule_due    zset    periodic entry name scored by its next due time (ms)

    {prefix}:queues                  set     the registry of queue names (``Queue.all``)
    {prefix}:schedules               set     the queues periodic entries target
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


def registry(prefix: str = "orizuru") -> str:
    """The set of known queue names (outside every queue's slot)."""
    return f"{prefix}:queues"


def schedules(prefix: str = "orizuru") -> str:
    """The set of queues that periodic entries target (outside every queue's slot)."""
    return f"{prefix}:schedules"


@attrs.frozen
class QueueKeys:
    """The names of one queue's keys under one prefix."""

    name: str = attrs.field(validator=lambda _i, _a, v: validate_name(v))
    prefix: str = attrs.field(default="orizuru", validator=_validate_prefix)
    base: str = attrs.field(init=False)
    queue: str = attrs.field(init=False)
    delayed: str = attrs.field(init=False)
    unack: str = attrs.field(init=False)
    dead: str = attrs.field(init=False)
    consumers: str = attrs.field(init=False)
    info: str = attrs.field(init=False)
    paused: str = attrs.field(init=False)
    unique: str = attrs.field(init=False)
    unique_expiry: str = attrs.field(init=False)
    cancel: str = attrs.field(init=False)
    counts: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        base = f"{self.prefix}:{{{self.name}}}"
        object.__setattr__(self, "base", base)
        for field in attrs.fields(QueueKeys)[3:]:
            object.__setattr__(self, field.name, f"{base}:{field.name}")

    @property
    def registry(self) -> str:
        return registry(self.prefix)

    @property
    def schedule(self) -> str:
        return f"{self.base}:schedule"

    @property
    def schedule_payload(self) -> str:
        return f"{self.base}:schedule_payload"

    @property
    def schedule_due(self) -> str:
        return f"{self.base}:schedule_due"

    @property
    def throttled(self) -> str:
        return f"{self.base}:throttled"

    def rate(self, name: str) -> tuple[str, str]:
        """The start log and the pause of the limiter ``name`` ("": the queue's own)."""
        tail = f":{name}" if name else ""
        return f"{self.base}:rate{tail}", f"{self.base}:rate_pause{tail}"

    def processing(self, consumer: str) -> str:
        return f"{self.base}:processing:{consumer}"

    def prefetch(self, consumer: str) -> str:
        return f"{self.base}:prefetch:{consumer}"

    def of_member(self, member: bytes) -> tuple[bytes, bytes]:
        """(processing, prefetch) of a consumer id as stored, in bytes: the GC must
        reach the lists of whatever member it finds, even one that is not UTF-8."""
        base = self.base.encode()
        return base + b":processing:" + member, base + b":prefetch:" + member

    def all_fixed(self) -> tuple[str, ...]:
        """The keys that exist once per queue (not per consumer)."""
        return tuple(getattr(self, f.name) for f in attrs.fields(QueueKeys)[3:])
