"""Scenario 4: garbage pushed raw onto a queue between valid messages.

Another client may LPUSH anything. Every value a consumer cannot decode must end
in the dead-letter list, byte for byte, with a reason; every valid message must
still be delivered; the consumer must not stop. The builders below make the
kinds of garbage; the tests draw their arguments with hypothesis, the script
with ``random``.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any, cast

from orizuru_py import Consumer, DeadLetter, MsgpackCodec, Producer, QueueKeys
from orizuru_py.envelope import VERSION, Envelope, encode, new_id, now_ms

from .accounting import Figures, cleanup, left_in, new_queue
from .ledger import connect

Item = tuple[str, Any]  # ("valid", payload) or ("bad", raw bytes)


def envelope_of(payload: Any) -> bytes:
    return encode(new_id(), now_ms(), MsgpackCodec().encode(payload))


def truncated(payload: Any, fraction: float) -> bytes:
    """A valid message cut short, to ``fraction`` (0 <= fraction < 1) of its length."""
    raw = envelope_of(payload)
    return raw[: int(len(raw) * fraction)]


def with_version(payload: Any, version: int) -> bytes:
    """A valid message whose format version byte says ``version``."""
    raw = envelope_of(payload)
    return raw[:2] + bytes([version]) + raw[3:]


def with_payload_bytes(data: bytes) -> bytes:
    """A well-formed envelope whose payload is ``data``, not necessarily msgpack."""
    return encode(new_id(), now_ms(), data)


def decodable(raw: bytes) -> bool:
    """Whether a consumer with the default codec can read ``raw``."""
    try:
        MsgpackCodec().decode(Envelope.decode(raw).payload)
    except Exception:
        return False
    return True


def random_bad(rng: random.Random, payload: Any) -> bytes:
    """Garbage of a random kind (possibly, rarely, decodable after all)."""
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randrange(64))
    if kind == 1:
        return truncated(payload, rng.random())
    if kind == 2:
        return with_version(payload, rng.choice([v for v in range(256) if v != VERSION]))
    return with_payload_bytes(b"\xc1" + rng.randbytes(rng.randrange(16)))  # 0xc1: never msgpack


def random_items(rng: random.Random, n: int, bad_share: float = 0.3) -> list[Item]:
    """``n`` items, about ``bad_share`` of them garbage of every kind, for the script."""
    items: list[Item] = []
    while len(items) < n:
        payload = {"n": len(items), "pad": "x" * rng.randrange(40)}
        if rng.random() >= bad_share:
            items.append(("valid", payload))
        elif not decodable(raw := random_bad(rng, payload)):
            items.append(("bad", raw))
    return items


def garbage(url: str, items: list[Item], *, batch: int = 1, timeout: float = 30.0) -> Figures:
    """Push ``items`` in order (valid ones with a ``Producer``, garbage with a raw LPUSH),
    consume with ``next_batch(batch)`` until the queue is empty, and compare. Figures:
    ``valid``, ``bad``, ``delivered``, ``lost``, ``dead``, ``bad_not_dead`` (garbage
    missing from the dead letters), ``wrongly_dead``, ``without_reason``, ``left``."""
    queue = new_queue("garbage")
    keys = QueueKeys(queue)
    r = connect(url)
    try:
        producer = Producer(r, queue)
        ids, bad = [], Counter[bytes]()
        for kind, value in items:
            if kind == "valid":
                ids.append(producer.push(value))
            else:
                r.lpush(keys.queue, value)
                bad[value] += 1
        delivered = Counter[str]()
        start = time.monotonic()
        with Consumer(r, queue) as consumer:
            while time.monotonic() - start < timeout:
                for guard in consumer.next_batch(batch, timeout=0.1):
                    delivered[guard.id] += 1
                    guard.ack()
                if len(delivered) >= len(ids) and not r.exists(keys.queue):
                    break
        dead = [DeadLetter.decode(rec) for rec in cast(list[bytes], r.lrange(keys.dead, 0, -1))]
        dead_raws = Counter(d.raw for d in dead)
        return {
            "scenario": "garbage",
            "valid": len(ids),
            "bad": sum(bad.values()),
            "delivered": len(delivered),
            "lost": len(set(ids) - set(delivered)),
            "duplicates": sum(delivered.values()) - len(delivered),
            "dead": len(dead),
            "bad_not_dead": sum((bad - dead_raws).values()),
            "wrongly_dead": sum((dead_raws - bad).values()),
            "without_reason": sum(not d.reason for d in dead),
            "left": {k: v for k, v in left_in(r, queue).items() if k != "dead"},
            "seconds": round(time.monotonic() - start, 2),
        }
    finally:
        cleanup(r, queue)
