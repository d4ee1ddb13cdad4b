"""Queue, the operator's handle: registry, stats, peek, purge, requeue, delete."""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
import redis

from orizuru_py import BytesCodec, Consumer, Producer, Queue, QueueKeys
from orizuru_py.envelope import Envelope, new_id, now_ms
from tests.apis import Api
from tests.support import counting_client

MB = 1 << 20


def _push_big(r: redis.Redis, queue: str, n: int, size: int) -> list[str]:
    """``n`` messages of ``size`` bytes each, straight into the list (past any producer cap)."""
    ids = [new_id() for _ in range(n)]
    payload = msgpack.packb(b"x" * size)
    r.lpush(QueueKeys(queue).queue, *(Envelope(mid, now_ms(), payload).encode() for mid in ids))
    return ids


def _peak_mb(call: Callable[[], Any]) -> tuple[Any, float]:
    """What ``call`` returns, and the most memory (MB) Python held meanwhile."""
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1] / MB
    finally:
        tracemalloc.stop()


def _dead_letter(r: redis.Redis, queue: str, n: int) -> list[str]:
    ids = Producer(r, queue).push_many({"n": i} for i in range(n))
    with Consumer(r, queue) as consumer:
        for guard in consumer.next_batch(n, timeout=1.0):
            assert guard.dead_letter(f"bad {guard.payload['n']}")
    return ids


def test_the_registry_knows_every_queue_a_producer_or_consumer_used(
    api: Api, r: redis.Redis, queue: str
) -> None:
    Producer(r, f"{queue}-a").push(1)
    with Consumer(r, f"{queue}-b") as consumer:
        consumer.next(timeout=0)
    assert {f"{queue}-a", f"{queue}-b"} <= set(api.Queue.all(r))
    for name in ("a", "b"):
        api.Queue(r, f"{queue}-{name}").forget()
    assert not {f"{queue}-a", f"{queue}-b"} & set(api.Queue.all(r))
    api.Queue(r, f"{queue}-a").purge()


def test_stats_counts_each_list_and_every_consumer(api: Api, r: redis.Redis, queue: str) -> None:
    producer = Producer(r, queue)
    producer.push_many(range(5))
    producer.push("later", delay=60)
    with Consumer(r, queue) as consumer:
        guards = consumer.next_batch(2, timeout=1.0)
        assert guards[0].reject() and guards[1].ack()
        held = consumer.next_batch(1, timeout=1.0)
        time.sleep(0.6)  # a beat publishes what it did
        s = api.Queue(r, queue).stats()
        assert (s.waiting, s.delayed, s.unacked, s.dead, s.in_flight) == (2, 1, 1, 0, 1)
        (c,) = s.consumers
        assert (c.name, c.held, c.overdue, c.handled, c.failed) == (consumer.id, 1, False, 1, 1)
        assert c.last_beat_s < 1.0 and c.pid > 0 and c.host
        assert s.oldest_waiting_s is not None and 0 <= s.oldest_waiting_s < 10
        doc = s.to_json()
        for field in ("queue", "waiting", "delayed", "unacked", "dead", "in_flight", "consumers"):
            assert field in doc
        assert {"name", "held", "last_beat_s", "overdue"} <= set(doc["consumers"][0])
        consumer.ack_many(held)
    api.Queue(r, queue).purge()


def test_a_consumer_past_its_deadline_is_overdue(api: Api, r: redis.Redis, queue: str) -> None:
    Producer(r, queue).push(1)
    frozen = Consumer(r, queue, heartbeat_timeout=0.3)
    frozen.next_batch(1, timeout=1.0)
    frozen.stop_heartbeat()
    time.sleep(0.5)
    (c,) = api.Queue(r, queue).stats().consumers
    assert c.overdue and c.held == 1 and c.last_beat_s >= 0.3
    frozen.close()


def test_stats_of_many_queues_costs_two_round_trips(redis_url: str, queue: str) -> None:
    client, trips = counting_client(redis_url)
    names = [f"{queue}-{i}" for i in range(20)]
    for name in names:
        Producer(client, name).push(1)
    before = trips.here()
    stats = Queue.stats_of(client, names)
    assert trips.here() - before <= 2
    assert [s.waiting for s in stats] == [1] * 20
    for name in names:
        Queue(client, name).purge()
        Queue(client, name).forget()


def test_peek_shows_each_list_in_the_order_it_is_acted_on(
    api: Api, r: redis.Redis, queue: str
) -> None:
    producer = Producer(r, queue)
    ids = producer.push_many(["a", "b", "c"])
    producer.push("soon", delay=30)
    producer.push("later", delay=60)
    q = api.Queue(r, queue)
    assert [m.id for m in q.peek(10)] == ids  # next up first
    assert [m.payload for m in q.peek(2, offset=1)] == ["b", "c"]
    delayed = q.peek(10, "delayed")
    assert [m.payload for m in delayed] == ["soon", "later"]
    assert all(m.due_ms and m.due_ms > now_ms() for m in delayed)
    assert q.peek(5, "unacked") == []
    q.purge()


def test_peek_tells_garbage_from_another_codec(api: Api, r: redis.Redis, queue: str) -> None:
    keys = QueueKeys(queue)
    r.lpush(keys.queue, b"garbage")
    r.lpush(keys.queue, Envelope(new_id(), now_ms(), b"\xc1").encode())
    Producer(r, queue, codec=BytesCodec()).push(b"raw bytes")
    msgpack_view = api.Queue(r, queue).peek(3)
    assert msgpack_view[0].error and "not an orizuru envelope" in msgpack_view[0].error
    assert msgpack_view[1].error and "payload does not decode" in msgpack_view[1].error
    assert msgpack_view[1].id is not None
    bytes_view = api.Queue(r, queue, codec=BytesCodec()).peek(3)
    assert bytes_view[2].payload == b"raw bytes" and bytes_view[2].error is None
    api.Queue(r, queue).purge()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"n": 0}, "n must"),
        ({"n": 1001}, "n must"),
        ({"where": "x"}, "where"),
        ({"offset": -1}, "offset"),
        ({"offset": 10**30}, "offset"),
        ({"max_bytes": 0}, "max_bytes"),
    ],
)
def test_peek_refuses_bad_arguments(
    api: Api, r: redis.Redis, queue: str, kwargs: dict[str, object], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        api.Queue(r, queue).peek(**kwargs)  # type: ignore[arg-type]


def test_purge_deletes_what_waits_and_leaves_what_is_in_flight(
    api: Api, r: redis.Redis, queue: str
) -> None:
    producer = Producer(r, queue)
    producer.push_many(range(4))
    producer.push("d", delay=60)
    with Consumer(r, queue) as consumer:
        held = consumer.next_batch(1, timeout=1.0)
        assert api.Queue(r, queue).purge() == 4
        assert consumer.ack_many(held) == [True]


def test_requeue_revives_every_dead_letter_whatever_garbage_surrounds_it(
    api: Api, r: redis.Redis, queue: str
) -> None:
    keys = QueueKeys(queue)
    ids = _dead_letter(r, queue, 50)
    r.rpush(keys.dead, *[f"foreign {i}" for i in range(1000)])  # at the old end
    r.rpush(keys.dead, b"abcd", b"OZD\x01\xff\xff\xff\xff")  # too short; a length past the end
    revived = api.Queue(r, queue).requeue_dead()
    assert (revived, revived.garbage) == (50, 1002)
    assert r.llen(keys.dead) == 1002
    with Consumer(r, queue) as consumer:
        guards = consumer.next_batch(50, timeout=1.0)
        assert sorted(g.id for g in guards) == sorted(ids)
        assert {g.attempts for g in guards} == {1}
        consumer.ack_many(guards)
    api.Queue(r, queue).purge(dead=True)


def test_one_dead_letter_can_be_revived_or_deleted_by_id(
    api: Api, r: redis.Redis, queue: str
) -> None:
    ids = _dead_letter(r, queue, 3)
    q = api.Queue(r, queue)
    assert q.requeue_one(ids[1]) is True
    assert q.requeue_one(ids[1]) is False  # no longer dead
    assert q.delete(ids[0], "dead") is True
    assert [m.id for m in q.peek(10, "dead")] == [ids[2]]
    assert [m.id for m in q.peek(10)] == [ids[1]]
    assert q.delete(ids[1]) is True and q.peek(10) == []
    q.purge(dead=True)


def test_requeue_of_a_big_dead_list_is_done_in_bounded_steps(redis_url: str, queue: str) -> None:
    client, trips = counting_client(redis_url)
    _dead_letter(client, queue, 2500)
    before = trips.here()
    assert Queue(client, queue).requeue_dead() == 2500
    assert trips.here() - before >= 3  # 1000 records per step, at most
    Queue(client, queue).purge()


def test_peek_reads_only_the_first_bytes_of_big_messages(
    api: Api, r: redis.Redis, queue: str
) -> None:
    ids = _push_big(r, queue, 3, 20 * MB)
    found, peak = _peak_mb(lambda: api.Queue(r, queue).peek(10, max_bytes=1000))
    assert peak < 4  # reading them whole: 60 MB
    assert [m.id for m in found] == ids
    for m in found:
        assert m.truncated and m.payload is None and m.error is None
        assert m.size > 20 * MB and len(m.raw) <= 1000 + 2048
        assert m.head == msgpack.packb(b"x" * 20 * MB)[:1000]
    api.Queue(r, queue).purge()


def test_peek_reads_whole_messages_when_asked_or_small(
    api: Api, r: redis.Redis, queue: str
) -> None:
    _push_big(r, queue, 1, 2 * MB)
    Producer(r, queue).push({"small": True})
    q = api.Queue(r, queue)
    big, small = q.peek(2)
    assert big.truncated and not small.truncated and small.payload == {"small": True}
    assert small.size == len(small.raw)
    (whole,) = q.peek(1, max_bytes=None)
    assert whole.payload == b"x" * 2 * MB and not whole.truncated
    q.purge()


def test_a_dead_letters_long_reason_is_cut_too(api: Api, r: redis.Redis, queue: str) -> None:
    Producer(r, queue).push("poison")
    with Consumer(r, queue) as consumer:
        guard = consumer.next(timeout=1.0)
        assert guard is not None and guard.dead_letter("why " * 250_000)
    (dead,) = api.Queue(r, queue).peek(1, "dead", max_bytes=100)
    assert dead.payload == "poison" and dead.dead_ms
    assert dead.reason is not None and dead.reason.startswith("why why") and len(dead.reason) < 2300
    assert "1,000,000 bytes" in dead.reason
    api.Queue(r, queue).purge(dead=True)


def test_stats_reads_the_next_messages_age_not_the_message(
    api: Api, r: redis.Redis, queue: str
) -> None:
    _push_big(r, queue, 1, 30 * MB)
    s, peak = _peak_mb(lambda: api.Queue(r, queue).stats())
    assert peak < 2  # LINDEX of the message: 30 MB
    assert s.waiting == 1 and s.oldest_waiting_s is not None and s.oldest_waiting_s < 60
    api.Queue(r, queue).purge()


def test_a_malformed_consumer_record_shows_defaults_not_an_error(
    api: Api, r: redis.Redis, queue: str
) -> None:
    keys = QueueKeys(queue)
    Producer(r, queue).push(1)
    record = {"acked_per_s": float("inf"), "handled": "abc", "pid": [1], "timeout_ms": "x",
              "host": {"a": 1}, "failed_per_s": float("nan"), "started_ms": 2**64 - 1}  # fmt: skip
    r.hset(keys.info, "bad@1", msgpack.packb(record))
    r.hset(keys.info, "worse@2", b"\xc1 not msgpack")
    r.zadd(keys.consumers, {"bad@1": now_ms() + 60_000, "worse@2": float("-inf")})
    s = api.Queue(r, queue).stats()
    bad, worse = sorted(s.consumers, key=lambda c: c.name)
    assert (bad.acked_per_s, bad.handled, bad.pid, bad.host, bad.state) == (0.0, 0, 0, "", "live")
    assert worse.state == "overdue" and worse.last_beat_s == 0.0
    json.dumps(s.to_json(), allow_nan=False)  # what the dashboard sends
    api.Queue(r, queue).purge()
    r.delete(keys.info, keys.consumers)


def test_a_consumer_that_missed_two_beats_is_silent_before_it_is_overdue(
    api: Api, r: redis.Redis, queue: str
) -> None:
    Producer(r, queue).push(1)
    with Consumer(r, queue, heartbeat_timeout=4.0) as beating:
        beating.next(timeout=0)  # registered, beats every 0.5 s
        quiet = Consumer(r, queue, heartbeat_timeout=3.0)
        quiet.next_batch(1, timeout=1.0)
        quiet.stop_heartbeat()
        time.sleep(1.3)  # two beats of 0.5 s missed; the deadline is 3 s away
        by_name = {c.name: c for c in api.Queue(r, queue).stats().consumers}
        assert by_name[beating.id].state == "live"
        silent = by_name[quiet.id]
        assert silent.state == "silent" and not silent.overdue and silent.last_beat_s > 1.0
        assert silent.to_json()["state"] == "silent" and silent.timeout_s == 3.0
    quiet.close()
    api.Queue(r, queue).purge()
