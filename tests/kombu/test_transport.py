"""What the orizuru kombu transport adds to kombu's contract: where a message is while
a consumer holds it, what comes back when, and what is done with garbage."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import kombu
import pytest
import redis
from kombu.transport import TRANSPORT_ALIASES

import orizuru_py.kombu  # noqa: F401  (registers orizuru://)
from orizuru_py import Producer, Queue
from tests.kombu.workers import orizuru_url, wait_for


@pytest.fixture
def name(admin: redis.Redis) -> Iterator[str]:
    """A kombu queue of the test's own, whose keys (ours and kombu's) go after it."""
    queue = f"kq-{uuid.uuid4().hex[:10]}"
    yield queue
    for key in admin.scan_iter(match=f"*{queue}*", count=1000):
        admin.delete(key)
    admin.srem("orizuru:queues", queue)


@pytest.fixture
def conn(redis_url: str) -> Iterator[kombu.Connection]:
    c = kombu.Connection(orizuru_url(redis_url), transport_options={"heartbeat_timeout": 2.0})
    yield c
    c.release()


def test_importing_registers_the_aliases() -> None:
    assert TRANSPORT_ALIASES["orizuru"] == "orizuru_py.kombu:Transport"
    assert TRANSPORT_ALIASES["orizurus"] == "orizuru_py.kombu:Transport"


def test_a_taken_message_sits_in_the_consumer_s_processing_list(
    conn: kombu.Connection, r: redis.Redis, name: str
) -> None:
    with conn.SimpleQueue(name) as q:
        q.put({"n": 1})
        message = q.get_nowait()
        stats = Queue(r, name).stats()
        assert (stats.waiting, stats.in_flight) == (0, 1)
        message.ack()
        assert Queue(r, name).stats().in_flight == 0


def test_closing_hands_back_unacked_messages_uncounted(
    redis_url: str, r: redis.Redis, name: str
) -> None:
    with kombu.Connection(orizuru_url(redis_url)) as c, c.SimpleQueue(name) as q:
        q.put({"n": 1})
        assert q.get_nowait().payload == {"n": 1}
        assert Queue(r, name).stats().waiting == 0
    assert Queue(r, name).stats().waiting == 1
    (peeked,) = Queue(r, name).peek(1)
    assert peeked.attempts == 1  # no delivery counted: a graceful stop is not a failure


def test_a_consumer_that_dies_has_its_message_back_after_its_heartbeat(
    redis_url: str, r: redis.Redis, name: str
) -> None:
    dying = kombu.Connection(orizuru_url(redis_url), transport_options={"heartbeat_timeout": 1.0})
    q = dying.SimpleQueue(name)
    q.put({"n": 1})
    q.get_nowait()
    channel = q.channel
    for consumer in channel.lists._consumers.values():
        consumer.stop_heartbeat()  # as if its process had died
    channel.do_restore = False
    with kombu.Connection(orizuru_url(redis_url)) as other, other.SimpleQueue(name) as q2:
        message = q2.get(timeout=15)
        assert message.payload == {"n": 1} and message.delivery_info["redelivered"]
        message.ack()


def test_garbage_in_a_queue_is_dead_lettered_and_consuming_goes_on(
    conn: kombu.Connection, r: redis.Redis, name: str
) -> None:
    from orizuru_py import BytesCodec

    Producer(r, name, codec=BytesCodec()).push(b"\xff not json")
    with conn.SimpleQueue(name) as q:
        q.put({"n": 2})
        assert q.get(timeout=5).payload == {"n": 2}
    stats = Queue(r, name).stats()
    assert stats.dead == 1
    (record,) = Queue(r, name).peek(1, where="dead")
    assert "not a kombu message" in str(record.reason)


def test_reject_with_requeue_counts_and_dead_letters_at_max_attempts(
    redis_url: str, r: redis.Redis, name: str
) -> None:
    options = {"max_attempts": 2}
    c = kombu.Connection(orizuru_url(redis_url), transport_options=options)
    with c, c.SimpleQueue(name) as q:
        q.put({"n": 1})
        q.get_nowait().reject(requeue=True)
        second = q.get_nowait()
        assert second.delivery_info["redelivered"]
        second.reject(requeue=True)
        with pytest.raises(q.Empty):
            q.get_nowait()
    assert Queue(r, name).stats().dead == 1


def test_no_ack_consumers_settle_at_delivery(
    conn: kombu.Connection, r: redis.Redis, name: str
) -> None:
    with conn.SimpleQueue(name, no_ack=True) as q:
        q.put({"n": 1})
        assert q.get(timeout=5).payload == {"n": 1}
        wait_for(lambda: Queue(r, name).stats().in_flight == 0, 5, "the ack")


def test_a_queue_name_the_keys_cannot_hold_is_refused_at_declaration(
    conn: kombu.Connection,
) -> None:
    with pytest.raises(ValueError, match="kombu queue name"):
        conn.SimpleQueue("has a space")


def test_orizurus_speaks_tls_and_verifies_the_server_by_default(name: str) -> None:
    import ssl

    from tests.servers import TlsServer

    with TlsServer() as tls:
        url = f"orizurus://127.0.0.1:{tls.port}/0"
        options = {**tls.ssl_params, "ssl_cert_reqs": ssl.CERT_REQUIRED}
        with kombu.Connection(url, ssl=options) as c, c.SimpleQueue(name) as q:
            q.put({"n": 1})
            message = q.get(timeout=5)
            assert message.payload == {"n": 1}
            message.ack()
        # No CA given: the server's certificate (of this run's own CA) is refused.
        unverified = kombu.Connection(url)
        with pytest.raises(Exception, match="certificate verify failed"):
            unverified.connect()
        unverified.release()
