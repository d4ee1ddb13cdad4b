"""Commands that ran on the server but whose reply never reached the client.

A lost take leaves the message in the consumer's processing list with no guard:
the consumer must hand it back and deliver it, whether the connection error
reached it (``Redis.from_url``: no retries) or redis-py silently retried the
command (``Redis(host=, port=)``: up to 10 retries by default). A lost push either
raises (the caller learns the outcome is unknown) or, when the client itself
resends it, is queued twice under one id, so consumers can tell the copies
apart (the README says so).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis

from orizuru_py import Consumer, Producer, QueueKeys
from orizuru_py.envelope import MAGIC, VERSION, Envelope

from .ledger import connect
from .proxy import ChaosProxy
from .scenarios import through


@pytest.fixture
def proxy(redis_url: str) -> Iterator[ChaosProxy]:
    with ChaosProxy(urlsplit(redis_url).port or 6379) as p:
        yield p


def delivered_after_lost_reply(
    r: redis.Redis, redis_url: str, proxy: ChaosProxy, queue: str, client: str, command: str
) -> bool:
    """Lose the reply that carries the one message to the consumer (the reply to take.lua
    when the message is waiting, to BLMOVE when it comes while the consumer blocks); is
    the message delivered all the same?"""
    consumer = Consumer(
        connect(through(redis_url, proxy.port), client), queue, heartbeat_timeout=30
    )
    try:
        proxy.lose_reply_with(MAGIC + bytes([VERSION]))
        if command == "BLMOVE":
            threading.Timer(0.3, Producer(r, queue).push, args=("m",)).start()
        else:
            Producer(r, queue).push("m")
        guard = consumer.next(timeout=3)
        if proxy.cuts != 1:
            pytest.fail("the reply was not lost: the test did not run")
        return guard is not None and guard.ack()
    finally:
        consumer.close()
        r.delete(*QueueKeys(queue).all_fixed())


COMMANDS = ["take.lua", "BLMOVE"]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_take_whose_reply_is_lost_is_handed_back_and_delivered(
    r: redis.Redis, redis_url: str, proxy: ChaosProxy, queue: str, command: str
) -> None:
    assert delivered_after_lost_reply(r, redis_url, proxy, queue, "url", command)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_take_whose_reply_is_lost_and_retried_by_redis_py_is_delivered(
    r: redis.Redis, redis_url: str, proxy: ChaosProxy, queue: str, command: str
) -> None:
    assert delivered_after_lost_reply(r, redis_url, proxy, queue, "kwargs", command)


def push_losing_its_reply(redis_url: str, proxy: ChaosProxy, queue: str, client: str) -> str:
    """Push one message through a proxy that loses the reply; the id, or the error's name."""
    producer = Producer(connect(through(redis_url, proxy.port), client), queue)
    producer.r.ping()  # connected before the reply to lose is chosen
    proxy.lose_reply_with(b":1\r\n")  # LPUSH onto an empty queue answers 1
    try:
        return producer.push("m")
    except redis.ConnectionError as exc:
        return type(exc).__name__
    finally:
        if proxy.cuts != 1:
            pytest.fail("the reply was not lost: the test did not run")


def test_a_push_whose_reply_is_lost_raises_and_is_queued_at_most_once(
    r: redis.Redis, redis_url: str, proxy: ChaosProxy, queue: str
) -> None:
    assert push_losing_its_reply(redis_url, proxy, queue, "url") == "ConnectionError"
    assert r.llen(QueueKeys(queue).queue) == 1  # it had reached the server
    r.delete(QueueKeys(queue).queue)


def test_a_push_resent_by_redis_py_after_a_lost_reply_is_queued_twice_under_one_id(
    r: redis.Redis, redis_url: str, proxy: ChaosProxy, queue: str
) -> None:
    mid = push_losing_its_reply(redis_url, proxy, queue, "kwargs")
    copies = [Envelope.decode(raw).id for raw in r.lrange(QueueKeys(queue).queue, 0, -1)]
    assert copies == [mid, mid]
    r.delete(QueueKeys(queue).queue)
