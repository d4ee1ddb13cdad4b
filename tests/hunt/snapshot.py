"""Snapshot: every key of the hunted queues, read in one Lua script (atomic: no message
is seen twice or missed because it moved between two reads), parsed into places."""

from __future__ import annotations

from collections import Counter

import attrs
import msgpack
import redis

from orizuru_py.deadletter import DeadLetter
from orizuru_py.envelope import TOMBSTONE, Envelope
from orizuru_py.errors import DecodeError
from orizuru_py.keys import QueueKeys

# KEYS inside a script: fine for a test on a standalone server (the library never scans).
_SCRIPT = """
local out = {}
for _, pattern in ipairs(ARGV) do
  for _, key in ipairs(redis.call('KEYS', pattern)) do
    local t = redis.call('TYPE', key)['ok']
    local v = {}
    if t == 'list' then v = redis.call('LRANGE', key, 0, -1)
    elseif t == 'zset' then v = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    elseif t == 'hash' then v = redis.call('HGETALL', key)
    elseif t == 'set' then v = redis.call('SMEMBERS', key)
    elseif t == 'string' then v = {redis.call('GET', key)} end
    out[#out + 1] = {key, t, v}
  end
end
local now = redis.call('TIME')
out[#out + 1] = {'now', 'time', now}
return out
"""

LIVE_PLACES = ("queue", "delayed", "unack")  # plus processing:ID and prefetch:ID


@attrs.frozen
class Place:
    """Where one copy of a message sits, with its delivery count and unique key."""

    where: str  # queue, delayed, unack, dead, processing:ID, prefetch:ID, side
    deliveries: int
    unique_key: str | None
    raw: bytes
    n: int | None  # the hunter's payload number


def _pairs(values: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(values[::2], values[1::2], strict=True))


@attrs.define
class Snapshot:
    places: dict[str, list[Place]] = attrs.Factory(dict)
    held: dict[str, Counter[bytes]] = attrs.Factory(dict)  # consumer id -> raws in its lists
    consumers: dict[str, float] = attrs.Factory(dict)
    marks: dict[str, str] = attrs.Factory(dict)
    unique: dict[str, str] = attrs.Factory(dict)
    counts: dict[str, int] = attrs.Factory(dict)
    paused: bool = False
    garbage: list[str] = attrs.Factory(list)  # bytes no envelope, where
    now_ms: int = 0

    def where(self, mid: str) -> list[str]:
        return [p.where for p in self.places.get(mid, [])]

    def live(self, mid: str) -> bool:
        """In a list of the main queue from which it may still be delivered."""
        return any(p.where != "dead" and p.where != "side" for p in self.places.get(mid, []))

    def add(self, where: str, raw: bytes) -> None:
        if raw.startswith(TOMBSTONE):
            return
        try:
            env = Envelope.decode(raw)
        except DecodeError:
            self.garbage.append(where)
            return
        try:
            n = msgpack.unpackb(env.payload).get("n")
        except Exception:
            n = None
        place = Place(where, env.deliveries, env.unique_key, raw, n)
        self.places.setdefault(env.id, []).append(place)


def take(r: redis.Redis, queue: str, side: str) -> Snapshot:
    """One atomic read of ``queue``'s keys and of ``side``'s (where guard.push sends)."""
    main, other = QueueKeys(queue), QueueKeys(side)
    reply = r.eval(_SCRIPT, 0, f"{main.base}:*", f"{other.base}:*")
    snap = Snapshot()
    for raw_key, kind, values in reply:
        key = raw_key.decode()
        if kind == b"time":
            snap.now_ms = int(values[0]) * 1000 + int(values[1]) // 1000
        elif key.startswith(other.base):
            if key == other.queue:
                for raw in values:
                    snap.add("side", raw)
            elif kind == b"list" or key == other.delayed:
                snap.garbage.append(f"a side key {key} holds {len(values)} element(s)")
        else:
            _main_key(snap, main, key, values)
    return snap


def _main_key(snap: Snapshot, k: QueueKeys, key: str, values: list[bytes]) -> None:
    if key in (k.queue, k.unack):
        for raw in values:
            snap.add(key.rsplit(":", 1)[1], raw)
    elif key == k.delayed:
        for raw in values[::2]:
            snap.add("delayed", raw)
    elif key == k.dead:
        for record in values:
            try:
                snap.add("dead", DeadLetter.decode(record).raw)
            except DecodeError:
                snap.garbage.append("dead")
    elif key.startswith(k.base + ":processing:") or key.startswith(k.base + ":prefetch:"):
        kind, owner = key[len(k.base) + 1 :].split(":", 1)
        snap.held.setdefault(owner, Counter()).update(values)
        for raw in values:
            snap.add(f"{kind}:{owner}", raw)
    elif key == k.consumers:
        snap.consumers = {m.decode(): float(s) for m, s in _pairs(values).items()}
    elif key == k.cancel:
        snap.marks = {m.decode(): s.decode() for m, s in _pairs(values).items()}
    elif key == k.unique:
        snap.unique = {m.decode(): s.decode() for m, s in _pairs(values).items()}
    elif key == k.counts:
        snap.counts = {m.decode(): int(s) for m, s in _pairs(values).items()}
    elif key == k.paused:
        snap.paused = True
