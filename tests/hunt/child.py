"""A consumer process the hunter SIGKILLs mid-message: ``python -m tests.hunt.child URL
QUEUE HEARTBEAT_TIMEOUT MAX_ATTEMPTS``. It takes one message, prints its id and attempt
number (or ``none``), then sleeps until killed."""

from __future__ import annotations

import sys
import time

import redis

from orizuru_py import Consumer


def main(argv: list[str]) -> int:
    url, queue, hbt, most = argv[0], argv[1], float(argv[2]), int(argv[3])
    r = redis.Redis.from_url(url)
    consumer = Consumer(r, queue, name="hunt-child", heartbeat_timeout=hbt, max_attempts=most)
    guard = consumer.next(timeout=2.0)
    line = "none" if guard is None else f"{guard.id} {guard.attempts}"
    print(line, consumer.id, flush=True)
    time.sleep(120)  # the hunter kills us here
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
