"""GarbageCollector: reaps only the dead, counts deliveries, dead-letters at max_attempts."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from redis.exceptions import RedisClusterException

from orizuru_py import CollectReport, DeadLetter
from orizuru_py.envelope import Envelope, new_id, now_ms
from orizuru_py.keys import QueueKeys
from tests.apis import Api
from tests.support import wait_for


def _take(consumer: Any, n: int) -> list[Any]:
    guards = consumer.next_batch(n, timeout=5.0)
    assert len(guards) == n
    return guards


def _past_deadline(r: redis.Redis, queue: str, consumer_id: str) -> bool:
    """Whether the server's clock has passed the consumer's registered deadline (the GC
    reaps it from then on)."""
    deadline = r.zscore(QueueKeys(queue).consumers, consumer_id)
    seconds, micros = r.time()
    return deadline is not None and seconds * 1000 + micros // 1000 > deadline


def _dead_consumer(api: Api, r: redis.Redis, queue: str, holding: int) -> Any:
    """A consumer that took ``holding`` messages and stopped beating, past its deadline."""
    consumer = api.Consumer(r, queue, heartbeat_timeout=0.3)
    _take(consumer, holding)
    consumer.stop_heartbeat()
    wait_for(lambda: _past_deadline(r, queue, consumer.id), timeout=5.0)
    return consumer


def test_reaps_only_consumers_whose_deadline_passed(api: Api, r: redis.Redis, queue: str) -> None:
    keys = QueueKeys(queue)
    api.Producer(r, queue).push_many(list(range(5)))
    with api.Consumer(r, queue, heartbeat_timeout=3.0) as alive:
        alive_guards = _take(alive, 2)
        dead = _dead_consumer(api, r, queue, holding=3)
        report = api.GarbageCollector(r, queue).collect()
        assert (report.consumers_reaped, report.requeued) == (1, 3)
        assert [m.decode() for m in r.zrange(keys.consumers, 0, -1)] == [alive.id]
        assert r.llen(alive.processing_key) == 2
        assert r.exists(dead.processing_key) == 0
        assert r.llen(keys.queue) == 3
        assert alive.ack_many(alive_guards) == [True, True]


def test_a_reaped_consumers_messages_go_back_to_the_front_in_order(
    api: Api, r: redis.Redis, queue: str
) -> None:
    ids = api.Producer(r, queue).push_many(list(range(5)))
    _dead_consumer(api, r, queue, holding=3)
    assert api.GarbageCollector(r, queue).collect().requeued == 3
    with api.Consumer(r, queue) as consumer:
        guards = consumer.next_batch(5, timeout=5.0)
        assert [g.id for g in guards] == ids
        assert [g.attempts for g in guards] == [2, 2, 2, 1, 1]
        consumer.ack_many(guards)


def test_a_live_consumer_with_a_slow_handler_is_never_reaped(
    api: Api, r: redis.Redis, queue: str
) -> None:
    api.Producer(r, queue).push("slow")
    gc = api.GarbageCollector(r, queue)
    with api.Consumer(r, queue, heartbeat_timeout=0.5) as consumer:
        guard = consumer.next(timeout=5.0)
        assert guard is not None
        total = CollectReport()
        end = time.monotonic() + 3 * 0.5  # the handler runs three heartbeat timeouts
        collections = 0
        while time.monotonic() < end:
            total += gc.collect()
            collections += 1
            time.sleep(0.05)
        assert collections >= 10
        assert total == CollectReport()
        assert guard.ack() is True


def test_a_reaped_consumer_registers_again_with_its_next_take(
    api: Api, r: redis.Redis, queue: str
) -> None:
    keys = QueueKeys(queue)
    mid = api.Producer(r, queue).push("held through the freeze")
    frozen = _dead_consumer(api, r, queue, holding=1)
    assert api.GarbageCollector(r, queue).collect().consumers_reaped == 1
    assert r.zscore(keys.consumers, frozen.id) is None
    guard = frozen.next(timeout=5.0)  # it wakes up and takes again
    assert guard is not None and (guard.id, guard.attempts) == (mid, 2)
    assert r.zscore(keys.consumers, frozen.id) is not None
    frozen.close()


def test_max_attempts_dead_letters_after_that_many_deliveries(
    api: Api, r: redis.Redis, queue: str
) -> None:
    mid = api.Producer(r, queue).push("poison")
    gc = api.GarbageCollector(r, queue, max_attempts=3)
    attempts: list[int] = []
    with api.Consumer(r, queue) as consumer:
        for _ in range(10):
            guard = consumer.next(timeout=0.5)
            if guard is None:
                break
            attempts.append(guard.attempts)
            guard.reject()
            gc.collect()
    assert attempts == [1, 2, 3]
    [record] = r.lrange(QueueKeys(queue).dead, 0, -1)
    dead = DeadLetter.decode(record)
    assert dead.reason == "max attempts reached (3 deliveries)"
    envelope = dead.envelope()
    assert envelope is not None and envelope.id == mid


def test_without_max_attempts_a_message_is_never_dead_lettered(
    api: Api, r: redis.Redis, queue: str
) -> None:
    keys = QueueKeys(queue)
    r.lpush(keys.unack, Envelope(new_id(), now_ms(), b"\xa1x", deliveries=10_000).encode())
    report = api.GarbageCollector(r, queue, max_attempts=None).collect()
    assert (report.requeued, report.dead_lettered) == (1, 0)
    assert Envelope.decode(r.lindex(keys.queue, 0)).deliveries == 10_001


def test_report_counts_are_exact(api: Api, r: redis.Redis, queue: str) -> None:
    keys = QueueKeys(queue)
    producer = api.Producer(r, queue)
    producer.push_many(list(range(4)))
    _dead_consumer(api, r, queue, holding=4)  # 4 requeued, 1 consumer reaped
    producer.push_many(["u1", "u2"])
    with api.Consumer(r, queue) as rejecting:  # 2 rejected, returned to the queue
        for guard in _take(rejecting, 2):
            guard.reject()
    last = Envelope(new_id(), now_ms(), b"\xa4last", deliveries=4)
    r.lpush(keys.unack, last.encode())  # its 5th delivery ended: dead-lettered
    producer.push_many(["d1", "d2", "d3"], delay=0.05)  # 3 promoted
    time.sleep(0.2)
    report = api.GarbageCollector(r, queue, max_attempts=5).collect()
    assert report == CollectReport(requeued=6, dead_lettered=1, consumers_reaped=1, promoted=3)
    assert r.llen(keys.queue) == 4 + 2 + 3
    assert r.llen(keys.dead) == 1
    assert api.GarbageCollector(r, queue).collect() == CollectReport()


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        1.5,
        "3",
        True,
    ],
)
def test_max_attempts_must_be_a_positive_int_or_none(
    api: Api, r: redis.Redis, queue: str, value: Any
) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        api.GarbageCollector(r, queue, max_attempts=value)


def test_the_background_collector_recovers_a_dead_consumer(
    api: Api, r: redis.Redis, queue: str
) -> None:
    api.Producer(r, queue).push_many(["a", "b"])
    _dead_consumer(api, r, queue, holding=2)
    gc = api.GarbageCollector(r, queue)
    thread = gc.start(interval=0.05)
    try:
        with api.Consumer(r, queue) as consumer:
            guards = consumer.next_batch(2, timeout=5.0)
            assert [g.payload for g in guards] == ["a", "b"]
            assert [g.attempts for g in guards] == [2, 2]
            assert consumer.ack_many(guards) == [True, True]
    finally:
        gc.stop()
        thread.join(timeout=5.0)
    assert not thread.is_alive()


def test_a_member_that_is_not_utf8_is_reaped_and_the_pass_goes_on(
    api: Api, r: redis.Redis, queue: str
) -> None:
    keys = QueueKeys(queue)
    api.Producer(r, queue).push_many(["a", "b"])
    foreign = b"\xff\xfe not utf-8"
    processing, _ = keys.of_member(foreign)
    r.lmove(keys.queue, processing, "RIGHT", "LEFT")  # a foreign consumer holds "a"
    r.zadd(keys.consumers, {foreign: 1})  # long past its deadline
    dead = _dead_consumer(api, r, queue, holding=1)  # and one of ours holds "b"
    report = api.GarbageCollector(r, queue).collect()
    assert (report.consumers_reaped, report.requeued) == (2, 2)
    assert r.exists(processing, dead.processing_key, keys.consumers) == 0


class _Flaky:
    """A client that raises the given errors, one per call, before it behaves. Either
    API's client: an asyncio one's calls raise before they give their awaitables."""

    def __init__(self, r: Any, errors: list[BaseException]) -> None:
        self._r, self._errors = r, errors

    def _maybe_raise(self) -> None:
        if self._errors:
            raise self._errors.pop(0)

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        self._maybe_raise()
        return self._r.execute_command(*args, **kwargs)

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        self._maybe_raise()
        return self._r.pipeline(*args, **kwargs)

    def script_load(self, source: str) -> Any:
        return self._r.script_load(source)


def test_a_running_collector_survives_any_error_and_recovers_afterwards(
    api: Api, r: redis.Redis, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    api.Producer(r, queue).push_many(["a", "b"])
    _dead_consumer(api, r, queue, holding=2)
    errors: list[BaseException] = [
        RedisClusterException("Redis Cluster cannot be connected"),  # no RedisError
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        RuntimeError("anything else"),
        *[redis.ConnectionError("down")] * 3,
    ]
    gc = api.GarbageCollector(_Flaky(api.client(r), errors), queue)
    thread = gc.start(interval=0.05)
    try:
        wait_for(lambda: r.llen(QueueKeys(queue).queue) == 2, timeout=10)
        assert thread.is_alive()
    finally:
        gc.stop()
        thread.join(5)
    assert not errors
    assert "RedisClusterException" in caplog.text or "cannot be connected" in caplog.text
