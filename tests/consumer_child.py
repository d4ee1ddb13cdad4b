"""A consumer in a child process, for tests that kill it with SIGKILL.

Usage: python -m tests.consumer_child REDIS_URL QUEUE NAME TAKE ACK HEARTBEAT_TIMEOUT

Takes TAKE messages, acks the first ACK of them, prints one JSON line
{"acked": [ids], "held": [ids]}, then holds the rest until it is killed
(or for at most 60 s, so a forgotten child cannot outlive its test for long).
"""

from __future__ import annotations

import json
import sys
import time

import redis

from orizuru_py import Consumer, MessageGuard


def main(url: str, queue: str, name: str, take: int, ack: int, heartbeat_timeout: float) -> None:
    r = redis.Redis.from_url(url, socket_timeout=5)
    consumer = Consumer(r, queue, name=name, heartbeat_timeout=heartbeat_timeout)
    guards: list[MessageGuard] = []
    deadline = time.monotonic() + 30
    while len(guards) < take and time.monotonic() < deadline:
        guards += consumer.next_batch(take - len(guards), timeout=1.0)
    acked = [g.id for g in guards[:ack] if g.ack()]
    held = [g.id for g in guards[ack:]]
    print(json.dumps({"acked": acked, "held": held}), flush=True)
    time.sleep(60)


if __name__ == "__main__":
    url, queue, name, take, ack, heartbeat_timeout = sys.argv[1:7]
    main(url, queue, name, int(take), int(ack), float(heartbeat_timeout))
