"""A script that fails changes nothing: each checks the type of every key it may write
before its first write, so a foreign value where a queue's key should be is an error,
with every message still where it was."""

from __future__ import annotations

import time

import pytest
import redis

from orizuru_py import Consumer, GarbageCollector, Producer, QueueKeys

SETTLE_TARGETS = {
    "reject": lambda k: k.unack,
    "retry": lambda k: k.delayed,
    "dead_letter": lambda k: k.dead,
    "push": lambda k: QueueKeys(f"{k.name}-other").queue,
}


@pytest.mark.parametrize("settle", list(SETTLE_TARGETS))
def test_a_settle_onto_a_key_of_the_wrong_type_fails_with_the_message_still_held(
    r: redis.Redis, queue: str, settle: str
) -> None:
    keys = QueueKeys(queue)
    Producer(r, queue).push("m")
    target = SETTLE_TARGETS[settle](keys)
    r.set(target, "a foreign client's string")
    with Consumer(r, queue) as consumer:
        guard = consumer.next(timeout=5.0)
        assert guard is not None
        call = {"push": lambda: guard.push(f"{queue}-other")}.get(settle, getattr(guard, settle))
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            call()
        assert not guard.settled
        assert r.lrange(consumer.processing_key, 0, -1) == [guard.raw]  # nothing moved
        assert r.get(target) == b"a foreign client's string"
        r.delete(target)
        assert call() is True  # once the key is fixed, the same guard settles
    r.delete(QueueKeys(f"{queue}-other").queue, target)


def test_a_take_into_a_list_of_the_wrong_type_takes_nothing(r: redis.Redis, queue: str) -> None:
    ids = Producer(r, queue).push_many(["a", "b"])
    consumer = Consumer(r, queue)
    r.set(consumer.processing_key, "foreign")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        consumer._driver.run(consumer._take_now(2))
    assert r.llen(QueueKeys(queue).queue) == 2
    r.delete(consumer.processing_key)
    guards = consumer.next_batch(2, timeout=1.0)
    assert [g.id for g in guards] == ids
    consumer.ack_many(guards)
    consumer.close()


def test_a_reap_onto_a_queue_of_the_wrong_type_moves_nothing_and_the_gc_goes_on(
    r: redis.Redis, queue: str
) -> None:
    keys = QueueKeys(queue)
    Producer(r, queue).push_many(["a", "b"])
    dead = Consumer(r, queue, heartbeat_timeout=0.3)
    assert len(dead.next_batch(2, timeout=1.0)) == 2
    dead.stop_heartbeat()
    time.sleep(0.5)
    r.hset(keys.queue, "foreign", "hash")
    gc = GarbageCollector(r, queue)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        gc.collect()
    assert r.llen(dead.processing_key) == 2  # still held, nothing lost
    report = gc._driver.run(gc._guarded_pass())  # a running GC logs it and goes on
    assert report.consumers_reaped == 0
    r.delete(keys.queue)
    assert gc.collect().requeued == 2
    assert r.llen(keys.queue) == 2
