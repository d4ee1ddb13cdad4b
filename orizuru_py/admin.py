"""Looking at and tending queues: stats, peek, purge, requeue of dead letters.

Operator tools for the command line; none of them is on a message's path.
"""

from __future__ import annotations

from typing import Any

import attrs

from . import scripts
from .codecs import Codec, MsgpackCodec
from .deadletter import DeadLetter
from .envelope import Envelope
from .errors import DecodeError
from .keys import QueueKeys


@attrs.frozen
class QueueStats:
    """Sizes of one queue's lists, and its consumers with their message counts."""

    queue: str
    waiting: int
    delayed: int
    unacked: int
    dead: int
    consumers: dict[str, int]

    @property
    def in_flight(self) -> int:
        return sum(self.consumers.values())


@attrs.frozen
class Peeked:
    """A message as ``peek`` shows it; ``error`` is set for bytes that do not decode."""

    id: str | None
    attempts: int | None
    payload: Any
    reason: str | None = None
    error: str | None = None


def stats(r: Any, queue: str, prefix: str = "orizuru") -> QueueStats:
    """One round trip for the fixed keys, one more for the consumers' processing lists."""
    keys = QueueKeys(queue, prefix)
    pipe = r.pipeline(transaction=False)
    pipe.llen(keys.queue).zcard(keys.delayed).llen(keys.unack).llen(keys.dead)
    pipe.zrange(keys.consumers, 0, -1)
    waiting, delayed, unacked, dead, names = pipe.execute()
    names = [n.decode() for n in names]
    pipe = r.pipeline(transaction=False)
    for name in names:
        pipe.llen(keys.processing(name))
    held = pipe.execute() if names else []
    return QueueStats(queue, waiting, delayed, unacked, dead, dict(zip(names, held, strict=True)))


def queues(r: Any, prefix: str = "orizuru") -> list[str]:
    """Names of the queues that have any key now. Scans the keyspace: an operator's
    command, never used on a message's path."""
    found = set()
    for key in r.scan_iter(match=f"{prefix}:{{*}}:*", count=1000):
        text = key.decode()
        found.add(text[len(prefix) + 2 : text.index("}:", len(prefix) + 2)])
    return sorted(found)


def peek(
    r: Any,
    queue: str,
    n: int = 10,
    *,
    dead: bool = False,
    codec: Codec | None = None,
    prefix: str = "orizuru",
) -> list[Peeked]:
    """The next ``n`` messages to be delivered (or the oldest ``n`` dead letters), unmoved."""
    keys = QueueKeys(queue, prefix)
    codec = codec or MsgpackCodec()
    raws = r.lrange(keys.dead if dead else keys.queue, -n, -1)
    out = []
    for raw in reversed(raws):
        reason = None
        try:
            if dead:
                record = DeadLetter.decode(raw)
                reason, raw = record.reason, record.raw
            env = Envelope.decode(raw)
            out.append(Peeked(env.id, env.deliveries + 1, codec.decode(env.payload), reason))
        except (DecodeError, ValueError, TypeError) as exc:
            out.append(Peeked(None, None, raw[:64], reason, error=str(exc)))
    return out


def requeue_dead(r: Any, queue: str, prefix: str = "orizuru") -> tuple[int, int]:
    """Move dead-lettered messages back to the queue with a fresh attempt count.
    Returns (requeued, left dead: records whose bytes are not a message)."""
    keys = QueueKeys(queue, prefix)
    revived = 0
    while True:
        n, left = scripts.REVIVE(r, (keys.dead, keys.queue), (1000,))
        revived += n
        if n == 0:
            return revived, left


def purge(r: Any, queue: str, *, dead: bool = False, prefix: str = "orizuru") -> int:
    """Delete the waiting, delayed and rejected messages (and the dead ones with ``dead``).
    In-flight messages are left to their consumers. Returns how many were deleted."""
    keys = QueueKeys(queue, prefix)
    targets = [keys.queue, keys.delayed, keys.unack] + ([keys.dead] if dead else [])
    pipe = r.pipeline(transaction=True)
    pipe.llen(keys.queue).zcard(keys.delayed).llen(keys.unack)
    if dead:
        pipe.llen(keys.dead)
    pipe.delete(*targets)
    *sizes, _ = pipe.execute()
    return int(sum(sizes))
