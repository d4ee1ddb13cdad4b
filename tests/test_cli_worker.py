"""``orizuru worker``, run as a user runs it. ``--processes`` is in ``test_processes``."""

from __future__ import annotations

import signal
import subprocess

import redis

from orizuru_py import Producer, Queue
from tests.clirun import environment, started
from tests.support import wait_for


def test_an_async_def_handler_runs_on_the_asyncio_worker(
    r: redis.Redis, redis_url: str, queue: str
) -> None:
    Producer(r, queue).push_many({"n": i} for i in range(20))
    args = ["--redis-url", redis_url, "worker", "tests.ops_handlers:coroutine", queue]
    env = environment(HANDLED_URL=redis_url, HANDLED_KEY=f"{queue}:handled")
    with started(args, env=env, stderr=subprocess.PIPE) as p:
        try:
            wait_for(lambda: r.scard(f"{queue}:handled") == 20, timeout=30)
        finally:
            p.send_signal(signal.SIGTERM)
            assert p.wait(30) == 0
    assert Queue(r, queue).stats().waiting == 0
    r.delete(f"{queue}:handled")
