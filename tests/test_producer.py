"""Producer: ids, batching, and bad input refused at the call site with nothing queued."""

from __future__ import annotations

import math
from typing import Any

import pytest
import redis

from orizuru_py import BytesCodec, Consumer, EncodeError, Producer
from orizuru_py.envelope import Envelope
from orizuru_py.keys import QueueKeys

from .support import counting_client, keys_of


class Unencodable:
    pass


def test_push_returns_the_id_of_the_queued_message(r: redis.Redis, queue: str) -> None:
    mid = Producer(r, queue).push({"n": 1})
    [raw] = r.lrange(QueueKeys(queue).queue, 0, -1)
    assert isinstance(mid, str)
    assert Envelope.decode(raw).id == mid


def test_push_is_one_round_trip(redis_url: str, queue: str) -> None:
    client, trips = counting_client(redis_url)
    client.ping()
    before = trips.here()
    Producer(client, queue).push({"n": 1})
    assert trips.here() - before == 1
    client.close()


def test_push_many_returns_ids_in_delivery_order(r: redis.Redis, queue: str) -> None:
    ids = Producer(r, queue).push_many([{"n": i} for i in range(50)])
    assert len(set(ids)) == 50
    with Consumer(r, queue) as consumer:
        delivered = consumer.next_batch(50, timeout=5.0)
        assert [g.id for g in delivered] == ids
        assert [g.payload for g in delivered] == [{"n": i} for i in range(50)]
        consumer.ack_many(delivered)


def test_push_many_is_one_round_trip_per_thousand(
    redis_url: str, r: redis.Redis, queue: str
) -> None:
    client, trips = counting_client(redis_url)
    client.ping()
    before = trips.here()
    Producer(client, queue).push_many({"n": i} for i in range(2500))
    assert trips.here() - before == 3
    assert r.llen(QueueKeys(queue).queue) == 2500
    client.close()


def test_push_many_of_nothing_sends_nothing(redis_url: str, queue: str) -> None:
    client, trips = counting_client(redis_url)
    client.ping()
    before = trips.here()
    assert Producer(client, queue).push_many([]) == []
    assert trips.here() - before == 0
    client.close()


def test_unencodable_payload_fails_at_the_call_site_with_nothing_queued(
    r: redis.Redis, queue: str
) -> None:
    with pytest.raises(EncodeError, match="Unencodable"):
        Producer(r, queue).push(Unencodable())
    assert keys_of(r, queue) == []


def test_push_many_with_one_bad_payload_queues_none(r: redis.Redis, queue: str) -> None:
    payloads: list[Any] = [{"n": i} for i in range(1500)]
    payloads[1200] = Unencodable()  # in the second chunk: the first must not be sent either
    with pytest.raises(EncodeError):
        Producer(r, queue).push_many(payloads)
    assert keys_of(r, queue) == []


def test_payload_at_max_payload_bytes_is_accepted(r: redis.Redis, queue: str) -> None:
    Producer(r, queue, codec=BytesCodec(), max_payload_bytes=100).push(b"x" * 100)
    assert r.llen(QueueKeys(queue).queue) == 1


def test_payload_over_max_payload_bytes_is_an_encode_error(r: redis.Redis, queue: str) -> None:
    producer = Producer(r, queue, codec=BytesCodec(), max_payload_bytes=100)
    with pytest.raises(EncodeError, match=r"101 bytes.*max_payload_bytes\D*100"):
        producer.push(b"x" * 101)
    assert keys_of(r, queue) == []


@pytest.mark.parametrize("limit", [0, -1])
def test_max_payload_bytes_must_be_positive(r: redis.Redis, queue: str, limit: int) -> None:
    with pytest.raises(ValueError, match="max_payload_bytes"):
        Producer(r, queue, max_payload_bytes=limit)


@pytest.mark.parametrize("name", ["", "a{b}", "two words", "x" * 201])
def test_bad_queue_name_is_a_value_error(r: redis.Redis, name: str) -> None:
    with pytest.raises(ValueError, match="queue name"):
        Producer(r, name)


@pytest.mark.parametrize("delay", [-0.001, -1, math.nan, "1"])
def test_bad_delay_is_a_value_error_with_nothing_queued(
    r: redis.Redis, queue: str, delay: Any
) -> None:
    producer = Producer(r, queue)
    with pytest.raises(ValueError, match="delay"):
        producer.push({"n": 1}, delay=delay)
    with pytest.raises(ValueError, match="delay"):
        producer.push_many([{"n": 1}], delay=delay)
    assert keys_of(r, queue) == []


def test_infinite_delay_is_a_value_error(r: redis.Redis, queue: str) -> None:
    with pytest.raises(ValueError, match="delay"):
        Producer(r, queue).push({"n": 1}, delay=math.inf)
    assert keys_of(r, queue) == []
