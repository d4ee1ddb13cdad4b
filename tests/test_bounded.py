"""No script blocks the server for long whatever the sizes involved, and a script that
fails changes nothing.

While a big operation runs, the server's SLOWLOG records every command slower than the
limit: its own time, free of any client's scheduling noise. None of ours may be there.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from orizuru_py import Consumer, GarbageCollector, Producer, Queue, QueueKeys, scripts
from orizuru_py.chunks import release
from tests.support import wait_for

STALL_LIMIT_US = 50_000  # the scripts these replace ran 1 to 5 s


@contextmanager
def slow_scripts(r: redis.Redis, queue: str) -> Iterator[list[int]]:
    """The durations (µs) of the commands on ``queue``'s keys slower than the limit."""
    before = r.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
    r.config_set("slowlog-log-slower-than", STALL_LIMIT_US)
    r.slowlog_reset()
    found: list[int] = []
    try:
        yield found
    finally:
        tag = f"{{{queue}}}".encode()
        for entry in r.slowlog_get(1000):
            if any(tag in part for part in entry["command"].split()):
                found.append(int(entry["duration"]))
        r.config_set("slowlog-log-slower-than", before)


def _fill(r: redis.Redis, queue: str, n: int) -> None:
    producer = Producer(r, queue)
    for start in range(0, n, 10_000):
        producer.push_many(range(start, min(n, start + 10_000)))


@pytest.mark.slow
def test_handing_back_20000_unstarted_messages_never_stalls_the_server(
    redis_url: str, r: redis.Redis, queue: str
) -> None:
    _fill(r, queue, 20_000)
    consumer = Consumer(r, queue, prefetch=True)
    taken = consumer.next_batch(10_000, timeout=5) + consumer.next_batch(10_000, timeout=5)
    assert len(taken) == 20_000
    with slow_scripts(r, queue) as slow:
        moved = consumer._driver.run(release(consumer.held))
    assert moved == 20_000 and r.llen(QueueKeys(queue).queue) == 20_000
    assert slow == [], f"commands that held the server over {STALL_LIMIT_US} µs: {slow}"
    consumer.close()


@pytest.mark.slow
def test_acking_10000_messages_in_random_order_never_stalls_the_server(
    redis_url: str, r: redis.Redis, queue: str
) -> None:
    _fill(r, queue, 10_000)
    with Consumer(r, queue) as consumer:
        guards = consumer.next_batch(10_000, timeout=5)
        random.Random(7).shuffle(guards)
        with slow_scripts(r, queue) as slow:
            assert consumer.ack_many(guards) == [True] * 10_000
        assert r.llen(consumer.processing_key) == 0
    assert slow == [], f"commands that held the server over {STALL_LIMIT_US} µs: {slow}"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["reaped", "closed"])
def test_a_consumer_holding_100000_messages_is_emptied_in_bounded_steps(
    redis_url: str, r: redis.Redis, queue: str, how: str
) -> None:
    _fill(r, queue, 100_000)
    consumer = Consumer(r, queue, heartbeat_timeout=0.5)
    held = 0
    while held < 100_000:
        held += len(consumer.next_batch(10_000, timeout=5))
    with slow_scripts(r, queue) as slow:
        if how == "closed":
            consumer.close()
        else:
            consumer.stop_heartbeat()
            report = wait_for(lambda: GarbageCollector(r, queue).collect(), timeout=10)
            assert report.requeued == 100_000 and report.consumers_reaped == 1
    assert r.llen(QueueKeys(queue).queue) == 100_000
    assert r.exists(consumer.processing_key) == 0
    assert slow == [], f"commands that held the server over {STALL_LIMIT_US} µs: {slow}"


def test_requeueing_dead_letters_never_stalls_the_server(
    redis_url: str, r: redis.Redis, queue: str
) -> None:
    keys = QueueKeys(queue)
    _fill(r, queue, 20_000)
    with Consumer(r, queue) as consumer:
        for _ in range(2):
            guards = consumer.next_batch(10_000, timeout=5)
            consumer._driver.run(_dead_letter_all(consumer, guards))
    assert r.llen(keys.dead) == 20_000
    with slow_scripts(r, queue) as slow:
        assert Queue(r, queue).requeue_dead() == 20_000
    assert slow == [], f"commands that held the server over {STALL_LIMIT_US} µs: {slow}"


async def _dead_letter_all(consumer: Consumer, guards: list[Any]) -> None:
    raws = [g.raw for g in guards]
    await scripts.dead_letter(consumer.keys, consumer.processing_key, "test", raws).run()
    consumer.held.forget(raws)


# -- a failing script changes nothing ------------------------------------------------------

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
        consumer._driver.run(consumer._take_now(2, 0))
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
