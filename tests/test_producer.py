"""Producer: ids, batching, and bad input refused at the call site with nothing queued."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from orizuru_py import BytesCodec, EncodeError, Producer
from orizuru_py.envelope import Envelope
from orizuru_py.keys import QueueKeys
from orizuru_py.ops.embedded import EmbeddedServer
from tests.apis import Api

from .support import counting_client, keys_of


class Unencodable:
    pass


def test_push_returns_the_id_of_the_queued_message(api: Api, r: redis.Redis, queue: str) -> None:
    mid = api.Producer(r, queue).push({"n": 1})
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


def test_push_many_returns_ids_in_delivery_order(api: Api, r: redis.Redis, queue: str) -> None:
    ids = api.Producer(r, queue).push_many([{"n": i} for i in range(50)])
    assert len(set(ids)) == 50
    with api.Consumer(r, queue) as consumer:
        delivered = consumer.next_batch(50, timeout=5.0)
        assert [g.id for g in delivered] == ids
        assert [g.payload for g in delivered] == [{"n": i} for i in range(50)]
        consumer.ack_many(delivered)


def test_push_many_is_one_round_trip_whatever_its_size(
    redis_url: str, r: redis.Redis, queue: str
) -> None:
    client, trips = counting_client(redis_url)
    client.ping()
    before = trips.here()
    Producer(client, queue).push_many({"n": i} for i in range(2500))
    assert trips.here() - before == 1
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
    admin: redis.Redis, api: Api, r: redis.Redis, queue: str
) -> None:
    with pytest.raises(EncodeError, match="Unencodable"):
        api.Producer(r, queue).push(Unencodable())
    assert keys_of(admin, queue) == []


def test_push_many_with_one_bad_payload_queues_none(
    admin: redis.Redis, api: Api, r: redis.Redis, queue: str
) -> None:
    payloads: list[Any] = [{"n": i} for i in range(1500)]
    payloads[1200] = Unencodable()  # in the second chunk: the first must not be sent either
    with pytest.raises(EncodeError):
        api.Producer(r, queue).push_many(payloads)
    assert keys_of(admin, queue) == []


def test_payload_at_max_payload_bytes_is_accepted(api: Api, r: redis.Redis, queue: str) -> None:
    api.Producer(r, queue, codec=BytesCodec(), max_payload_bytes=100).push(b"x" * 100)
    assert r.llen(QueueKeys(queue).queue) == 1


def test_payload_over_max_payload_bytes_is_an_encode_error(
    admin: redis.Redis, api: Api, r: redis.Redis, queue: str
) -> None:
    producer = api.Producer(r, queue, codec=BytesCodec(), max_payload_bytes=100)
    with pytest.raises(EncodeError, match=r"101 bytes.*max_payload_bytes\D*100"):
        producer.push(b"x" * 101)
    assert keys_of(admin, queue) == []


@pytest.mark.parametrize("limit", [0, -1])
def test_max_payload_bytes_must_be_positive(
    api: Api, r: redis.Redis, queue: str, limit: int
) -> None:
    with pytest.raises(ValueError, match="max_payload_bytes"):
        api.Producer(r, queue, max_payload_bytes=limit)


@pytest.mark.parametrize("name", ["", "a{b}", "two words", "x" * 201])
def test_bad_queue_name_is_a_value_error(api: Api, r: redis.Redis, name: str) -> None:
    with pytest.raises(ValueError, match="queue name"):
        api.Producer(r, name)


@pytest.mark.parametrize("delay", [-0.001, -1, math.nan, "1"])
def test_bad_delay_is_a_value_error_with_nothing_queued(
    admin: redis.Redis, api: Api, r: redis.Redis, queue: str, delay: Any
) -> None:
    producer = api.Producer(r, queue)
    with pytest.raises(ValueError, match="delay"):
        producer.push({"n": 1}, delay=delay)
    with pytest.raises(ValueError, match="delay"):
        producer.push_many([{"n": 1}], delay=delay)
    assert keys_of(admin, queue) == []


def test_infinite_delay_is_a_value_error(
    admin: redis.Redis, api: Api, r: redis.Redis, queue: str
) -> None:
    with pytest.raises(ValueError, match="delay"):
        api.Producer(r, queue).push({"n": 1}, delay=math.inf)
    assert keys_of(admin, queue) == []


@pytest.fixture
def private() -> Iterator[redis.Redis]:
    """A server of this test's own, to set maxmemory and its policy on."""
    with EmbeddedServer() as server:
        client = redis.Redis.from_url(server.url)
        yield client
        client.close()


def test_push_many_at_maxmemory_queues_all_or_nothing(
    api: Api, private: redis.Redis, queue: str
) -> None:
    private.config_set("maxmemory", "4mb")
    private.config_set("maxmemory-policy", "noeviction")
    ballast = 0
    while True:  # fill the server up to its limit
        try:
            private.set(f"ballast:{ballast}", b"x" * 64_000)
        except redis.ResponseError:
            break
        ballast += 1
    private.delete(f"ballast:{ballast - 1}")  # room for a little, not for 10,000
    producer = api.Producer(private, queue)
    with pytest.raises(redis.ResponseError, match="maxmemory"):
        producer.push_many({"n": i, "pad": "y" * 100} for i in range(10_000))
    assert private.llen(QueueKeys(queue).queue) == 0  # none of them, not a part
    private.delete(*[f"ballast:{i}" for i in range(ballast)])
    ids = producer.push_many({"n": i, "pad": "y" * 100} for i in range(10_000))
    assert private.llen(QueueKeys(queue).queue) == len(ids) == 10_000


def test_a_server_that_may_evict_queue_keys_is_warned_about_once(
    api: Api, private: redis.Redis, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    private.config_set("maxmemory-policy", "allkeys-lru")
    with caplog.at_level(logging.WARNING, logger="orizuru_py"):
        api.Producer(private, queue).push(1)
        api.Producer(private, queue).push(2)
        with api.Consumer(private, queue) as consumer:
            consumer.next_batch(2, timeout=1.0)
    warnings = [r.getMessage() for r in caplog.records if "maxmemory-policy" in r.getMessage()]
    assert len(warnings) == 1  # once per client
    assert "allkeys-lru" in warnings[0] and "noeviction" in warnings[0]


def test_a_noeviction_server_draws_no_warning(
    api: Api, private: redis.Redis, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    private.config_set("maxmemory-policy", "noeviction")
    with caplog.at_level(logging.WARNING, logger="orizuru_py"):
        api.Producer(private, queue).push(1)
    assert "maxmemory-policy" not in caplog.text
