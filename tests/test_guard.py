"""MessageGuard: each way to settle a message, settle-once, and failures that leave it safe."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from orizuru_py import (
    AlreadySettled,
    DeadLetter,
    Producer,
    scripts,
)
from orizuru_py.envelope import Envelope
from orizuru_py.keys import QueueKeys
from tests.apis import Api

from .support import Proxy, wait_for

ALL_SCRIPTS = [s for s in vars(scripts).values() if isinstance(s, scripts.Script)]
Settle = Callable[[Any], bool]  # a guard of either API
SETTLES: dict[str, Settle] = {
    "ack": lambda g: g.ack(),
    "reject": lambda g: g.reject(),
    "push": lambda g: g.push(f"{g.queue}-other"),
    "retry": lambda g: g.retry(delay=60.0),
    "dead_letter": lambda g: g.dead_letter("settled by the test"),
}


@pytest.fixture
def consumer(api: Api, r: redis.Redis, queue: str) -> Iterator[Any]:
    with api.Consumer(r, queue) as consumer:
        yield consumer


def _one(r: redis.Redis, consumer: Any, payload: object = "m") -> Any:
    Producer(r, consumer.queue).push(payload)  # pushed by either API: the same message
    guard = consumer.next(timeout=5.0)
    assert guard is not None
    return guard


def _ids(r: redis.Redis, key: str) -> list[str]:
    return [Envelope.decode(raw).id for raw in r.lrange(key, 0, -1)]


def _past_deadline(r: redis.Redis, queue: str, consumer_id: str) -> bool:
    """Whether the server's clock has passed the consumer's registered deadline (the GC
    reaps it from then on)."""
    deadline = r.zscore(QueueKeys(queue).consumers, consumer_id)
    seconds, micros = r.time()
    return deadline is not None and seconds * 1000 + micros // 1000 > deadline


def test_ack_removes_the_message_for_good(r: redis.Redis, consumer: Any) -> None:
    guard = _one(r, consumer)
    assert guard.ack() is True
    assert guard.settled
    assert r.llen(consumer.processing_key) == 0
    assert r.llen(consumer.keys.queue) == 0
    assert consumer.next(timeout=0) is None


@pytest.mark.parametrize(("first", "second"), list(itertools.product(SETTLES, repeat=2)))
def test_a_guard_settles_only_once(r: redis.Redis, consumer: Any, first: str, second: str) -> None:
    guard = _one(r, consumer)
    assert SETTLES[first](guard) is True
    with pytest.raises(AlreadySettled):
        SETTLES[second](guard)


def test_ack_is_false_once_the_gc_recovered_the_message(
    api: Api, r: redis.Redis, queue: str
) -> None:
    dead = api.Consumer(r, queue, heartbeat_timeout=0.3)
    guard = _one(r, dead)
    dead.stop_heartbeat()  # it stops beating: to the GC it is dead
    wait_for(lambda: _past_deadline(r, queue, dead.id), timeout=5.0)
    report = api.GarbageCollector(r, queue).collect()
    assert (report.consumers_reaped, report.requeued) == (1, 1)
    assert guard.ack() is False
    with api.Consumer(r, queue) as alive:
        again = alive.next(timeout=5.0)
        assert again is not None
        assert (again.id, again.attempts) == (guard.id, 2)
        assert again.ack() is True


def test_clean_exit_of_the_with_block_acks(r: redis.Redis, consumer: Any) -> None:
    with _one(r, consumer) as guard:
        pass
    assert guard.settled
    assert r.llen(consumer.processing_key) == 0
    assert r.exists(consumer.keys.unack, consumer.keys.queue) == 0


def test_exception_in_the_with_block_rejects_and_propagates(r: redis.Redis, consumer: Any) -> None:
    with pytest.raises(KeyError, match="boom"), _one(r, consumer) as guard:
        raise KeyError("boom")
    assert guard.settled
    assert r.llen(consumer.processing_key) == 0
    assert _ids(r, consumer.keys.unack) == [guard.id]


def test_a_guard_settled_inside_the_with_block_is_left_alone(r: redis.Redis, consumer: Any) -> None:
    with _one(r, consumer) as guard:
        assert guard.dead_letter("handled by hand") is True
    assert r.llen(consumer.keys.dead) == 1
    assert r.exists(consumer.keys.unack, consumer.keys.queue) == 0


def test_push_moves_the_message_to_another_queue_atomically(
    api: Api, r: redis.Redis, consumer: Any, queue: str
) -> None:
    guard = _one(r, consumer, {"to": "elsewhere"})
    assert guard.push(f"{queue}-other") is True
    assert r.llen(consumer.processing_key) == 0
    assert r.llen(consumer.keys.queue) == 0
    with api.Consumer(r, f"{queue}-other") as other:
        moved = other.next(timeout=5.0)
        assert moved is not None
        assert (moved.id, moved.payload, moved.queue) == (
            guard.id,
            {"to": "elsewhere"},
            f"{queue}-other",
        )
        assert moved.ack() is True


def test_reject_goes_to_the_unack_list_and_the_gc_returns_it_counted(
    api: Api, r: redis.Redis, consumer: Any, queue: str
) -> None:
    guard = _one(r, consumer)
    assert guard.reject() is True
    assert _ids(r, consumer.keys.unack) == [guard.id]
    assert consumer.next(timeout=0) is None
    assert api.GarbageCollector(r, queue).collect().requeued == 1
    again = consumer.next(timeout=5.0)
    assert again is not None
    assert (again.id, again.attempts) == (guard.id, 2)
    assert r.llen(consumer.keys.unack) == 0


def test_retry_comes_back_after_its_delay_counted(r: redis.Redis, consumer: Any) -> None:
    guard = _one(r, consumer)
    started = time.monotonic()
    assert guard.retry(delay=0.5) is True
    assert r.llen(consumer.processing_key) == 0
    assert r.zcard(consumer.keys.delayed) == 1
    assert consumer.next(timeout=0.3) is None
    again = consumer.next(timeout=5.0)  # the consumer's heartbeat promotes it
    assert again is not None
    assert 0.45 <= time.monotonic() - started < 0.5 + 2.0
    assert (again.id, again.attempts) == (guard.id, 2)
    assert r.zcard(consumer.keys.delayed) == 0


def test_dead_letter_records_the_reason(r: redis.Redis, consumer: Any) -> None:
    guard = _one(r, consumer, {"bad": True})
    assert guard.dead_letter("invalid address") is True
    assert r.llen(consumer.processing_key) == 0
    [record] = r.lrange(consumer.keys.dead, 0, -1)
    dead = DeadLetter.decode(record)
    assert dead.reason == "invalid address"
    assert dead.raw == guard.raw
    envelope = dead.envelope()
    assert envelope is not None and envelope.id == guard.id


@pytest.mark.parametrize("name", list(SETTLES))
def test_a_settle_that_fails_on_the_connection_leaves_the_guard_unsettled(
    api: Api, redis_url: str, r: redis.Redis, queue: str, name: str
) -> None:
    Producer(r, queue).push("m")
    with Proxy(redis_url) as proxy:
        client = redis.Redis.from_url(proxy.url, retry=Retry(NoBackoff(), 0))
        consumer = api.Consumer(client, queue)
        guard = consumer.next(timeout=5.0)
        assert guard is not None
        proxy.cut()
        with pytest.raises(redis.ConnectionError):
            SETTLES[name](guard)
        assert not guard.settled
        assert r.lrange(consumer.processing_key, 0, -1) == [guard.raw]
        proxy.restore()
        assert SETTLES[name](guard) is True
        assert guard.settled
        assert r.llen(consumer.processing_key) == 0
        consumer.close()
        client.close()


@pytest.mark.parametrize(
    "settle",
    [lambda g: g.retry(delay=-1.0), lambda g: g.push("no such{queue}"), lambda g: g.push("")],
    ids=["retry-negative-delay", "push-braced-name", "push-empty-name"],
)
def test_bad_settle_arguments_raise_and_leave_the_guard_unsettled(
    r: redis.Redis, consumer: Any, settle: Settle
) -> None:
    guard = _one(r, consumer)
    with pytest.raises(ValueError):
        settle(guard)
    assert not guard.settled
    assert r.lrange(consumer.processing_key, 0, -1) == [guard.raw]
    assert guard.ack() is True


def _holding(r: redis.Redis, consumer: Any, key_of_target: str) -> int:
    """How many copies of the consumer's one message sit in ``key_of_target`` (list or zset)."""
    kind = r.type(key_of_target)
    if kind == b"zset":
        return int(r.zcard(key_of_target))
    return int(r.llen(key_of_target))


@pytest.mark.parametrize("name", list(SETTLES))
def test_a_settle_whose_reply_was_lost_is_applied_once(
    api: Api, redis_url: str, r: redis.Redis, queue: str, name: str
) -> None:
    Producer(r, queue).push("m")
    keys = QueueKeys(queue)
    target = {
        "ack": None,
        "reject": keys.unack,
        "push": QueueKeys(f"{queue}-other").queue,
        "retry": keys.delayed,
        "dead_letter": keys.dead,
    }[name]
    with Proxy(redis_url) as proxy:
        client = redis.Redis.from_url(proxy.url, socket_timeout=0.5, retry=Retry(NoBackoff(), 0))
        consumer = api.Consumer(client, queue)
        guard = consumer.next(timeout=5.0)
        assert guard is not None
        for script in ALL_SCRIPTS:  # a NOSCRIPT reply would mean nothing was applied
            r.script_load(script.source)
        proxy.muted.set()  # the server settles it; the reply never arrives
        with pytest.raises(redis.TimeoutError):
            SETTLES[name](guard)
        assert not guard.settled
        proxy.muted.clear()
        assert SETTLES[name](guard) is False  # no longer held: settled by the first call
        assert guard.settled
        assert r.llen(consumer.processing_key) == 0
        assert target is None or _holding(r, consumer, target) == 1
        consumer.close()
        client.close()
