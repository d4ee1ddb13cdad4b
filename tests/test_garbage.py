"""Garbage in the queue: dead-lettered with its reason, never fatal, never silently dropped."""

from __future__ import annotations

import redis

from orizuru_py import Consumer, DeadLetter, Producer
from orizuru_py.envelope import Envelope, new_id, now_ms
from orizuru_py.keys import QueueKeys

GARBAGE = [
    b"not an envelope",
    b"",
    b"OZ\x01\x00",  # a truncated header
    b"OZ\x07" + bytes(13) + b"x",  # a future version
    b"OZ\x01" + bytes(12) + b"\x09" + b"short",  # an id running past the end
    Envelope(new_id(), now_ms(), b"\xc1").encode(),  # a valid envelope, undecodable payload
]


def _push_mixed(r: redis.Redis, queue: str) -> list[str]:
    """Push valid messages with one piece of garbage before each; return the valid ids."""
    producer, ids = Producer(r, queue), []
    for i, junk in enumerate(GARBAGE):
        r.lpush(QueueKeys(queue).queue, junk)
        ids.append(producer.push({"n": i}))
    return ids


def _dead_letters(r: redis.Redis, queue: str) -> list[DeadLetter]:
    return [DeadLetter.decode(rec) for rec in reversed(r.lrange(QueueKeys(queue).dead, 0, -1))]


def test_garbage_is_dead_lettered_and_valid_messages_arrive_in_order(
    r: redis.Redis, queue: str
) -> None:
    ids = _push_mixed(r, queue)
    with Consumer(r, queue) as consumer:
        guards = [consumer.next(timeout=5.0) for _ in ids]
        assert [g.id if g else None for g in guards] == ids
        assert consumer.ack_many(g for g in guards if g) == [True] * len(ids)
        assert r.llen(consumer.processing_key) == 0
    dead = _dead_letters(r, queue)
    assert [d.raw for d in dead] == GARBAGE
    assert all(d.reason.startswith("undecodable") for d in dead)
    assert "bad magic" in dead[0].reason
    assert "truncated" in dead[2].reason
    assert "version 7" in dead[3].reason
    assert "malformed envelope" in dead[4].reason
    assert "payload" in dead[5].reason


def test_next_batch_skips_garbage_and_returns_the_valid_messages(
    r: redis.Redis, queue: str
) -> None:
    ids = _push_mixed(r, queue)
    with Consumer(r, queue) as consumer:
        guards = consumer.next_batch(2 * len(GARBAGE), timeout=5.0)
        assert [g.id for g in guards] == ids
        consumer.ack_many(guards)
    assert len(_dead_letters(r, queue)) == len(GARBAGE)


def test_a_consumer_keeps_running_after_a_queue_of_only_garbage(r: redis.Redis, queue: str) -> None:
    r.lpush(QueueKeys(queue).queue, *GARBAGE)
    with Consumer(r, queue) as consumer:
        assert consumer.next(timeout=0.5) is None
        mid = Producer(r, queue).push("still alive")
        guard = consumer.next(timeout=5.0)
        assert guard is not None and guard.id == mid
        assert guard.ack() is True
    assert len(_dead_letters(r, queue)) == len(GARBAGE)
