"""One regression test per defect the hunt found (see the report of issue 18). A test
marked xfail(strict=True) fails on the code as it is: fixing the defect makes it pass,
and strict makes that an error until the mark is removed."""

from __future__ import annotations

import pytest
import redis

from orizuru_py import Consumer, Producer, Queue


@pytest.mark.xfail(
    strict=True,
    reason="guard.retry() never dead-letters: retry.lua counts the delivery and puts the "
    "message back on the delayed set whatever max_attempts says, so a message retried at "
    "its last attempt is delivered again, past max_attempts (hunt seed 302)",
)
def test_a_retry_at_the_last_attempt_dead_letters_the_message(r: redis.Redis, queue: str) -> None:
    Producer(r, queue).push({"n": 1})
    consumer = Consumer(r, queue, max_attempts=2, heartbeat_timeout=5.0)
    try:
        for attempt in (1, 2):
            guard = consumer.next(timeout=10.0)
            assert guard is not None and guard.attempts == attempt
            assert guard.retry(0.0)
        again = consumer.next(timeout=1.0)
        assert again is None, f"delivered again at attempt {again.attempts} of 2"
        assert Queue(r, queue).stats().dead == 1
    finally:
        consumer.close()
