"""Delayed messages: invisible until due, then promoted by any consumer's heartbeat."""

from __future__ import annotations

import time

import redis

from orizuru_py import Consumer, Producer
from orizuru_py.keys import QueueKeys


def test_a_delayed_message_is_invisible_until_due_then_delivered(
    r: redis.Redis, queue: str
) -> None:
    keys = QueueKeys(queue)
    with Consumer(r, queue) as consumer:  # no GC runs: its heartbeat promotes
        started = time.monotonic()
        mid = Producer(r, queue).push({"later": True}, delay=0.5)
        assert r.llen(keys.queue) == 0
        assert r.zcard(keys.delayed) == 1
        assert consumer.next(timeout=0.3) is None
        guard = consumer.next(timeout=5.0)
        waited = time.monotonic() - started
        assert guard is not None
        assert (guard.id, guard.payload, guard.attempts) == (mid, {"later": True}, 1)
        assert 0.45 <= waited <= 0.5 + 1.0
        assert guard.ack() is True
    assert r.exists(keys.delayed) == 0


def test_push_many_with_a_delay_delivers_all_in_order_once_due(r: redis.Redis, queue: str) -> None:
    keys = QueueKeys(queue)
    with Consumer(r, queue) as consumer:
        started = time.monotonic()
        ids = Producer(r, queue).push_many([{"n": i} for i in range(20)], delay=0.5)
        assert r.zcard(keys.delayed) == 20
        assert consumer.next(timeout=0.3) is None
        guards = consumer.next_batch(20, timeout=5.0)
        waited = time.monotonic() - started
        assert [g.id for g in guards] == ids
        assert 0.45 <= waited <= 0.5 + 1.0
        assert consumer.ack_many(guards) == [True] * 20
    assert r.exists(keys.delayed, keys.queue) == 0


def test_a_zero_delay_is_immediate(r: redis.Redis, queue: str) -> None:
    keys = QueueKeys(queue)
    Producer(r, queue).push("now", delay=0.0)
    assert (r.llen(keys.queue), r.zcard(keys.delayed)) == (1, 0)
