"""Consumer: order, timeouts, batches, ack_many, close and hand-back, block time."""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
import types
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from orizuru_py import (
    AlreadySettled,
    Consumer,
    GarbageCollector,
    MsgpackCodec,
    Producer,
    outage,
    scripts,
)
from orizuru_py.envelope import Envelope, new_id, now_ms
from orizuru_py.keys import QueueKeys
from tests.apis import Api

from .support import Proxy, counting_client, wait_for


def _take(consumer: Any, n: int) -> list[Any]:
    guards = [consumer.next(timeout=5.0) for _ in range(n)]
    assert all(g is not None for g in guards)
    return [g for g in guards if g is not None]


def _past_deadline(r: redis.Redis, queue: str, consumer_id: str) -> bool:
    """Whether the server's clock has passed the consumer's registered deadline (the GC
    reaps it from then on)."""
    deadline = r.zscore(QueueKeys(queue).consumers, consumer_id)
    seconds, micros = r.time()
    return deadline is not None and seconds * 1000 + micros // 1000 > deadline


def test_messages_come_out_in_the_order_they_were_pushed(
    api: Api, r: redis.Redis, queue: str
) -> None:
    producer = api.Producer(r, queue)
    ids = [producer.push({"n": i}) for i in range(20)]
    with api.Consumer(r, queue) as consumer:
        guards = _take(consumer, 20)
        assert [g.id for g in guards] == ids
        assert [g.payload for g in guards] == [{"n": i} for i in range(20)]
        assert all(g.attempts == 1 and g.queue == queue for g in guards)


def test_next_returns_none_after_its_timeout(api: Api, r: redis.Redis, queue: str) -> None:
    with api.Consumer(r, queue, block_time=0.2) as consumer:
        started = time.monotonic()
        assert consumer.next(timeout=0.6) is None
        elapsed = time.monotonic() - started
    assert 0.55 <= elapsed < 3.0


def test_next_with_zero_timeout_does_not_block(api: Api, r: redis.Redis, queue: str) -> None:
    with api.Consumer(r, queue, block_time=5.0) as consumer:
        started = time.monotonic()
        assert consumer.next(timeout=0) is None
        assert time.monotonic() - started < 1.0
        mid = api.Producer(r, queue).push("here")
        guard = consumer.next(timeout=0)
        assert guard is not None and guard.id == mid


def test_next_batch_takes_at_most_n_in_order(api: Api, r: redis.Redis, queue: str) -> None:
    ids = api.Producer(r, queue).push_many(list(range(250)))
    with api.Consumer(r, queue) as consumer:
        batches = [consumer.next_batch(100, timeout=1.0) for _ in range(4)]
        assert [len(b) for b in batches] == [100, 100, 50, 0]
        assert [g.id for b in batches for g in b] == ids
        assert [g.payload for b in batches for g in b] == list(range(250))


def test_ack_many_is_one_round_trip(redis_url: str, r: redis.Redis, queue: str) -> None:
    Producer(r, queue).push_many(list(range(500)))
    r.script_load(scripts.ACK.source)  # a server that already knows the script, as in steady state
    client, trips = counting_client(redis_url)
    with Consumer(client, queue) as consumer:
        guards = consumer.next_batch(500, timeout=5.0)
        before = trips.here()
        assert consumer.ack_many(guards) == [True] * 500
        assert trips.here() - before == 1
        assert r.llen(consumer.processing_key) == 0
    client.close()


def test_ack_many_returns_false_for_a_message_no_longer_held(
    api: Api, r: redis.Redis, queue: str
) -> None:
    api.Producer(r, queue).push_many(["a", "b", "c"])
    with api.Consumer(r, queue) as consumer:
        guards = consumer.next_batch(3, timeout=5.0)
        r.lrem(consumer.processing_key, 1, guards[1].raw)  # as if the GC had recovered it
        assert consumer.ack_many(guards) == [True, False, True]
        assert all(g.settled for g in guards)


def test_ack_many_acks_exactly_its_guards_in_any_order(
    api: Api, r: redis.Redis, queue: str
) -> None:
    api.Producer(r, queue).push_many(range(6))
    with api.Consumer(r, queue) as consumer:
        older, newer = consumer.next_batch(3, timeout=5.0), consumer.next_batch(3, timeout=5.0)
        assert consumer.ack_many(newer) == [True] * 3  # not the oldest: the scanning path
        assert r.lrange(consumer.processing_key, 0, -1) == [g.raw for g in reversed(older)]
        assert consumer.ack_many(older[::-1]) == [True] * 3
        assert r.llen(consumer.processing_key) == 0


def test_iteration_ends_after_close_from_another_thread(
    api: Api, r: redis.Redis, queue: str
) -> None:
    consumer = api.Consumer(r, queue, block_time=0.5)
    seen: list[Any] = []
    thread = threading.Thread(target=lambda: seen.extend(consumer), daemon=True)
    thread.start()
    time.sleep(0.3)  # let it block in BLMOVE
    assert thread.is_alive()
    started = time.monotonic()
    consumer.close()
    thread.join(timeout=5.0)
    assert not thread.is_alive()
    assert time.monotonic() - started < 0.5 + 2.0
    assert seen == []


def test_close_hands_unsettled_messages_back_and_deregisters(
    api: Api, r: redis.Redis, queue: str
) -> None:
    keys = QueueKeys(queue)
    ids = api.Producer(r, queue).push_many(["a", "b", "c"])
    consumer = api.Consumer(r, queue)
    _take(consumer, 2)
    assert r.llen(consumer.processing_key) == 2
    consumer.close()
    assert r.llen(keys.queue) == 3
    assert r.exists(consumer.processing_key) == 0
    assert r.zcard(keys.consumers) == 0
    with api.Consumer(r, queue) as again:
        guards = _take(again, 3)
        assert [g.id for g in guards] == ids
        assert again.ack_many(guards) == [True] * 3


def test_two_live_consumers_of_one_name_never_take_each_others_messages(
    api: Api, r: redis.Redis, queue: str
) -> None:
    ids = api.Producer(r, queue).push_many(["a", "b", "c"])
    first = api.Consumer(r, queue, name="worker-1")
    held = _take(first, 2)
    with api.Consumer(r, queue, name="worker-1") as second:
        assert (first.name, second.name) == ("worker-1", "worker-1")
        assert first.id != second.id and first.processing_key != second.processing_key
        rest = second.next_batch(3, timeout=0.5)
        assert [g.id for g in rest] == ids[2:]
        assert first.ack_many(held) == [True, True]  # nothing of the first was handed back
        assert second.ack_many(rest) == [True]
    first.close()


def test_a_dead_predecessors_messages_come_back_counted_once_its_deadline_passes(
    api: Api, r: redis.Redis, queue: str
) -> None:
    ids = api.Producer(r, queue).push_many(["a", "b", "c"])
    crashed = api.Consumer(r, queue, name="worker-1", heartbeat_timeout=0.5)
    _take(crashed, 2)
    crashed.stop_heartbeat()  # it dies holding two messages, without close()
    with api.Consumer(r, queue, name="worker-1", heartbeat_timeout=0.5) as successor:
        assert api.GarbageCollector(r, queue).collect().consumers_reaped == 0  # not yet
        wait_for(lambda: _past_deadline(r, queue, crashed.id), timeout=5.0)
        report = api.GarbageCollector(r, queue).collect()
        assert (report.consumers_reaped, report.requeued) == (1, 2)
        guards = _take(successor, 3)
        assert [(g.id, g.attempts) for g in guards] == [(ids[0], 2), (ids[1], 2), (ids[2], 1)]
        assert successor.ack_many(guards) == [True] * 3
    assert r.exists(crashed.processing_key, QueueKeys(queue).queue) == 0


def test_block_time_stays_below_the_client_socket_timeout(
    api: Api, redis_url: str, queue: str
) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=1)
    with api.Consumer(client, queue, block_time=5.0) as consumer:
        assert consumer.block <= 0.5
        started = time.monotonic()
        assert consumer.next(timeout=1.5) is None  # no socket timeout, no silent retries
        assert time.monotonic() - started < 4.0
    client.close()


def test_block_time_stays_below_the_default_socket_timeout(
    api: Api, redis_url: str, queue: str
) -> None:
    client = redis.Redis.from_url(redis_url)  # as in the README: no socket_timeout given
    connection = client.connection_pool.get_connection()
    assert connection.socket_timeout == 5
    client.connection_pool.release(connection)
    with api.Consumer(client, queue, block_time=8.0) as consumer:
        assert consumer.block <= 2.5  # redis-py's default socket timeout is 5 s
    client.close()


def test_ack_many_refuses_a_settled_guard_and_acks_none(
    api: Api, r: redis.Redis, queue: str
) -> None:
    api.Producer(r, queue).push_many(["a", "b"])
    with api.Consumer(r, queue) as consumer:
        first, second = consumer.next_batch(2, timeout=5.0)
        assert first.ack() is True
        with pytest.raises(AlreadySettled):
            consumer.ack_many([second, first])
        assert not second.settled
        assert r.lrange(consumer.processing_key, 0, -1) == [second.raw]


def test_ack_many_refuses_another_consumers_guard(api: Api, r: redis.Redis, queue: str) -> None:
    api.Producer(r, queue).push_many(["a", "b"])
    with api.Consumer(r, queue) as one, api.Consumer(r, queue) as other:
        mine, theirs = one.next(timeout=5.0), other.next(timeout=5.0)
        assert mine is not None and theirs is not None
        with pytest.raises(ValueError, match="belongs to consumer"):
            one.ack_many([mine, theirs])
        assert not mine.settled and not theirs.settled


@pytest.mark.parametrize("timeout", [-0.1, math.nan])
def test_a_negative_or_nan_timeout_is_a_value_error(
    api: Api, r: redis.Redis, queue: str, timeout: float
) -> None:
    with api.Consumer(r, queue) as consumer, pytest.raises(ValueError, match="timeout"):
        consumer.next(timeout=timeout)


@pytest.mark.parametrize(
    "heartbeat_timeout",
    [
        0.1,
        -1.0,
        math.nan,
        math.inf,
    ],
)
def test_heartbeat_timeout_must_be_a_finite_number_of_at_least_0_2_s(
    api: Api, r: redis.Redis, queue: str, heartbeat_timeout: float
) -> None:
    with pytest.raises(ValueError, match="heartbeat_timeout"):
        api.Consumer(r, queue, heartbeat_timeout=heartbeat_timeout)
    assert r.exists(QueueKeys(queue).consumers) == 0


@pytest.mark.parametrize("n", [0, -1, 10_001, 2.0])
def test_next_batch_size_must_be_an_int_from_1_to_10000(
    api: Api, r: redis.Redis, queue: str, n: Any
) -> None:
    with api.Consumer(r, queue) as consumer, pytest.raises(ValueError, match="n must be"):
        consumer.next_batch(n)


def test_next_survives_a_lost_connection_and_delivers_once_it_is_back(
    api: Api, redis_url: str, r: redis.Redis, queue: str
) -> None:
    with Proxy(redis_url) as proxy:
        client = redis.Redis.from_url(proxy.url, socket_timeout=2, retry=Retry(NoBackoff(), 0))
        consumer = api.Consumer(client, queue, block_time=0.2)
        proxy.cut()
        began = time.monotonic()
        with pytest.raises(redis.ConnectionError):  # an outage is no empty queue
            consumer.next(timeout=1.0)
        assert time.monotonic() - began >= 0.9  # retried for the whole timeout first
        proxy.restore()
        mid = api.Producer(r, queue).push("after the outage")
        guard = consumer.next(timeout=10.0)
        assert guard is not None and guard.id == mid
        assert guard.ack() is True
        consumer.close()
        client.close()


def test_an_outage_is_logged_once_when_lost_and_once_when_back(
    redis_url: str, r: redis.Redis, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="orizuru_py")
    with Proxy(redis_url) as proxy:
        client = redis.Redis.from_url(proxy.url, socket_timeout=2, retry=Retry(NoBackoff(), 0))
        consumer = Consumer(client, queue, block_time=0.2, heartbeat_timeout=10.0)
        collector = GarbageCollector(client, queue)
        got: list[Any] = []
        taking = threading.Thread(target=lambda: got.append(consumer.next()), daemon=True)
        taking.start()
        collecting = collector.start(0.1)
        wait_for(lambda: r.zcard(QueueKeys(queue).consumers) == 1)
        proxy.cut()
        time.sleep(2.5)  # about 5 beats, 20 collector passes and many takes fail
        proxy.restore()
        mid = Producer(r, queue).push("after the outage")
        taking.join(10)
        assert got and got[0].id == mid
        got[0].ack()
        collector.stop()
        collecting.join(5)
        consumer.close()
        client.close()
    ours = [rec for rec in caplog.records if rec.name.startswith("orizuru_py")]
    lost = [rec for rec in ours if rec.levelno == logging.WARNING]
    back = [rec for rec in ours if "reachable again" in rec.getMessage()]
    assert len(lost) == 1 and "lost the server" in lost[0].getMessage(), lost
    assert len(back) == 1 and back[0].levelno == logging.INFO


def test_a_long_outage_reminds_at_most_every_30_s(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Two loops failing every second for 95 s: one line lost, a reminder at 30, 60 and
    90 s, one line back (the clock is the outage's own, stepped by the test)."""
    now = [1000.0]
    monkeypatch.setattr(outage, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    caplog.set_level(logging.INFO, logger="orizuru_py")
    record = outage.Outage("redis://somewhere:6379/0")
    for second in range(96):
        now[0] = 1000.0 + second
        record.lost("heartbeat", redis.ConnectionError("refused"))
        record.lost("take", redis.ConnectionError("refused"))
    record.back()
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "orizuru_py"]
    assert len(lines) == 5, lines
    assert "lost the server" in lines[0]
    assert [line.split("after ")[1].split(" s")[0] for line in lines[1:4]] == ["30", "60", "90"]
    assert "reachable again after 95.0 s" in lines[4]


def test_a_message_taken_while_close_waits_is_delivered_or_handed_back_not_both(
    api: Api, r: redis.Redis, queue: str
) -> None:
    consumer = api.Consumer(r, queue, block_time=1.0)
    taken: list[Any] = []
    taker = threading.Thread(target=lambda: taken.append(consumer.next()), daemon=True)
    taker.start()
    time.sleep(0.2)  # blocked in BLMOVE
    closer = threading.Thread(target=consumer.close, daemon=True)
    closer.start()
    time.sleep(0.1)  # close() is waiting for the take to end
    api.Producer(r, queue).push("arrives during close")
    taker.join(timeout=5.0)
    closer.join(timeout=5.0)
    assert not taker.is_alive() and not closer.is_alive()
    delivered = sum(g is not None for g in taken)
    handed_back = r.llen(QueueKeys(queue).queue)
    assert delivered + handed_back == 1


def test_a_client_that_decodes_responses_is_refused_at_construction(
    api: Api, redis_url: str, queue: str
) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=5, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        api.Consumer(client, queue).close()
    client.close()


def test_a_take_whose_reply_was_lost_is_handed_back_and_delivered(
    api: Api, redis_url: str, r: redis.Redis, queue: str
) -> None:
    with Proxy(redis_url) as proxy:
        client = redis.Redis.from_url(proxy.url, socket_timeout=1.0, retry=Retry(NoBackoff(), 0))
        consumer = api.Consumer(client, queue, block_time=0.3)
        assert consumer.next(timeout=0) is None  # its first take is done (and its scripts loaded)
        proxy.muted.set()  # takes still happen on the server; their replies are dropped
        mid = api.Producer(r, queue).push("taken in the dark")
        taken: list[Any] = []
        taker = threading.Thread(target=lambda: taken.append(consumer.next(timeout=15.0)))
        taker.start()
        wait_for(lambda: r.llen(consumer.processing_key) == 1, timeout=5.0)
        proxy.muted.clear()
        taker.join(timeout=20.0)
        assert not taker.is_alive()
        [guard] = taken
        assert guard is not None
        assert (guard.id, guard.attempts) == (mid, 1)
        assert r.lrange(consumer.processing_key, 0, -1) == [guard.raw]
        assert r.llen(QueueKeys(queue).queue) == 0
        assert guard.ack() is True
        consumer.close()
        client.close()


def test_a_consumer_dropped_without_close_stops_beating_and_is_recovered(
    api: Api, r: redis.Redis, queue: str
) -> None:
    ids = api.Producer(r, queue).push_many(["a", "b"])
    consumer = api.Consumer(r, queue, heartbeat_timeout=0.5)
    assert len(consumer.next_batch(2, timeout=1.0)) == 2  # the guards are dropped at once
    beat = consumer._heartbeat
    assert beat is not None and beat.is_alive()
    del consumer
    gc.collect()
    beat.join(2.0)
    assert not beat.is_alive()  # nothing keeps a dropped consumer beating
    wait_for(lambda: api.GarbageCollector(r, queue).collect().consumers_reaped, timeout=5.0)
    with api.Consumer(r, queue) as after:
        guards = after.next_batch(2, timeout=1.0)
        assert [(g.id, g.attempts) for g in guards] == [(ids[0], 2), (ids[1], 2)]
        after.ack_many(guards)


def test_two_copies_of_the_same_bytes_are_two_messages_held(
    api: Api, r: redis.Redis, queue: str
) -> None:
    raw = Envelope(new_id(), now_ms(), MsgpackCodec().encode("resent")).encode()
    r.lpush(QueueKeys(queue).queue, raw, raw)  # a push resent by the client: two copies
    with api.Consumer(r, queue) as consumer:
        first, second = consumer.next_batch(2, timeout=1.0)
        assert first.raw == second.raw
        assert consumer.next(timeout=0) is None  # a take that looks for lost replies
        assert r.llen(consumer.processing_key) == 2  # the second copy was not handed back
        assert first.ack() is True
        assert second.ack() is True
    assert r.exists(QueueKeys(queue).queue) == 0
