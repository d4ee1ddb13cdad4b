"""A script that fails changes nothing: each checks the type of every key it may write
before its first write (or undoes a move a later write refuses), so a foreign value
where a queue's key should be is an error, with every message still where it was."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from orizuru_py import Consumer, GarbageCollector, Producer, QueueKeys, envelope, scripts
from orizuru_py.plan import Driver
from tests.support import keys_of


@pytest.fixture(autouse=True)
def _clean(r: redis.Redis, queue: str) -> Iterator[None]:
    """Delete the queue's keys after each test: a squatted key left behind would meet
    every tool that lists the registered queues on this server (the dashboard, say)."""
    yield
    for key in keys_of(r, queue):
        r.delete(key)


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


def _state(r: redis.Redis, keys: QueueKeys) -> dict[bytes, bytes | None]:
    """Every key of the queue, as DUMP serializes it."""
    return {key: r.dump(key) for key in sorted(r.scan_iter(match=f"{keys.base}:*"))}


# What a take may write, by the one a foreign value squats: the worker's lists are the
# prefetch (``dest``) and the processing list; a redelivered message goes to the prefetch.
TAKE_TARGETS = ["dest", "processing", "consumers", "prefetch of a redelivery"]


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("wrong", TAKE_TARGETS)
def test_a_take_refused_for_a_key_of_the_wrong_type_changes_nothing(
    r: redis.Redis, queue: str, wrong: str, n: int
) -> None:
    keys = QueueKeys(queue)
    Producer(r, queue).push_many(["a", "b"])
    oldest = r.rpop(keys.queue)
    assert isinstance(oldest, bytes)
    r.rpush(keys.queue, envelope.with_deliveries(oldest, 1))  # delivered once before
    dest, processing = f"{keys.base}:prefetch:w", f"{keys.base}:processing:w"
    squatted = {"dest": dest, "processing": processing, "consumers": keys.consumers}
    r.set(squatted.get(wrong, dest), "a foreign client's string")
    started = wrong != "dest"  # the first message of a started take goes to processing
    if wrong == "prefetch of a redelivery":
        started = True
    before = _state(r, keys)
    take = scripts.take(keys, dest, processing, "w", 2**40, n, started)
    with pytest.raises(redis.ResponseError, match=r"WRONGTYPE orizuru: .* holds a string"):
        Driver(r).run(take.run())
    assert _state(r, keys) == before


@pytest.mark.parametrize("counted", [True, False])
def test_one_taken_tombstone_is_dropped_only_while_tombstones_are_counted(
    r: redis.Redis, queue: str, counted: bool
) -> None:
    """A deleted message's mark is dropped and counted off; the same bytes pushed by
    another client when no mark is counted are a message, which a consumer dead-letters
    as garbage: never dropped silently."""
    keys = QueueKeys(queue)
    (mid,) = Producer(r, queue).push_many(["a"])
    r.rpush(keys.queue, envelope.TOMBSTONE)  # the oldest
    if counted:
        r.hset(keys.counts, "tombstones:queue", 1)
    else:
        r.set(keys.counts, "foreign")  # no count can be read: none counted
    processing = f"{keys.base}:processing:c"
    take = scripts.take(keys, processing, processing, "c", 2**40, 1, False)
    reply = Driver(r).run(take.run())
    if counted:
        assert reply == [1, 0, 0, 0, 0]  # registered, nothing taken
        assert r.llen(processing) == 0 and r.hget(keys.counts, "tombstones:queue") == b"0"
        _, _, length, _, _, raw = Driver(r).run(take.run())
        assert envelope.message_id(raw) == mid and length == 1
    else:
        assert reply == [1, 0, 1, 0, 0, envelope.TOMBSTONE]
        assert r.lrange(processing, 0, -1) == [envelope.TOMBSTONE]


# What a push with a unique key may write, by the one a foreign value squats; "held":
# the unique key already names a message (its expiry is then read before any write).
PUSH_TARGETS = ["queue", "unique", "unique_expiry", "unique_expiry, held"]


@pytest.mark.parametrize("wrong", PUSH_TARGETS)
def test_a_unique_push_refused_for_a_key_of_the_wrong_type_changes_nothing(
    r: redis.Redis, queue: str, wrong: str
) -> None:
    keys = QueueKeys(queue)
    producer = Producer(r, queue)
    producer.push("before", unique_key="other")
    r.set(getattr(keys, wrong.split(",")[0]), "a foreign client's string")
    if wrong.endswith("held"):
        r.hset(keys.unique, "k", "an id")
    before = _state(r, keys)
    with pytest.raises(redis.ResponseError, match=r"WRONGTYPE orizuru: .* holds a string"):
        producer.push("m", unique_key="k")
    assert _state(r, keys) == before
