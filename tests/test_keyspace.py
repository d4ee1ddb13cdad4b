"""Nothing left behind: a drained queue leaves no key in Redis."""

from __future__ import annotations

import time

import redis

from orizuru_py import Consumer, GarbageCollector, Producer
from orizuru_py.keys import QueueKeys

from .support import keys_of


def test_a_drained_run_leaves_no_key(admin: redis.Redis, r: redis.Redis, queue: str) -> None:
    Producer(r, queue).push_many(list(range(50)))
    with Consumer(r, queue) as consumer:
        assert keys_of(admin, queue) != []
        while guards := consumer.next_batch(20, timeout=0.2):
            assert all(consumer.ack_many(guards))
    assert keys_of(admin, queue) == []


def test_reject_retry_and_recovery_paths_leave_no_key_once_drained(
    admin: redis.Redis, r: redis.Redis, queue: str
) -> None:
    Producer(r, queue).push_many(["orphaned", "rejected", "retried"])
    gc = GarbageCollector(r, queue)
    dead = Consumer(r, queue, heartbeat_timeout=0.3)
    orphan = dead.next_batch(1, timeout=5.0)
    assert [g.payload for g in orphan] == ["orphaned"]
    dead.stop_heartbeat()
    with Consumer(r, queue) as consumer:
        rejected, retried = consumer.next_batch(2, timeout=5.0)
        assert rejected.reject() and retried.retry(delay=0.1)
        time.sleep(0.5)  # past the retry delay and the dead consumer's deadline
        gc.collect()
        guards = consumer.next_batch(10, timeout=1.0)
        assert sorted(g.payload for g in guards) == ["orphaned", "rejected", "retried"]
        assert consumer.ack_many(guards) == [True] * 3
    # only the queue's totals (consumers reaped, messages recovered) remain: one small hash
    assert keys_of(admin, queue) == [QueueKeys(queue).counts.encode()]
    assert r.hgetall(QueueKeys(queue).counts) == {b"reaped": b"1", b"recovered": b"1"}


def test_only_the_dead_letter_list_outlives_a_dead_lettered_message(
    admin: redis.Redis, r: redis.Redis, queue: str
) -> None:
    Producer(r, queue).push("poison")
    with Consumer(r, queue) as consumer:
        guard = consumer.next(timeout=5.0)
        assert guard is not None and guard.dead_letter("poison") is True
    assert keys_of(admin, queue) == [QueueKeys(queue).dead.encode()]
