"""A take that ran on the server but whose reply never reached the consumer.

The message is then in the consumer's processing list with no guard. The
consumer must hand it back and deliver it, whether the connection error reached
it (``Redis.from_url``: no retries) or redis-py silently retried the command
(``Redis(host=, port=)``: up to 10 retries by default).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis

from orizuru_py import Consumer, Producer, QueueKeys
from orizuru_py.envelope import MAGIC, VERSION

from .ledger import connect
from .proxy import ChaosProxy
from .scenarios import through

RETRIED = pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="core bug: when redis-py retries a take whose reply was lost, the first take's "
    "messages stay in the live consumer's processing list without a guard, and nothing "
    "hands them back until close() or death",
)


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


@RETRIED
@pytest.mark.parametrize("command", COMMANDS)
def test_a_take_whose_reply_is_lost_and_retried_by_redis_py_is_delivered(
    r: redis.Redis, redis_url: str, proxy: ChaosProxy, queue: str, command: str
) -> None:
    assert delivered_after_lost_reply(r, redis_url, proxy, queue, "kwargs", command)
