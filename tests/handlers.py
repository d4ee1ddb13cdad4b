"""Handlers that ``orizuru worker`` subprocesses in the tests import by path.

They record what they handle in Redis (``HANDLED_URL`` names the server), so a
test can count across processes.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis

_r = redis.Redis.from_url(os.environ.get("HANDLED_URL", "redis://127.0.0.1:6379/0"))
_key = os.environ.get("HANDLED_KEY", "handled")
_sleep = float(os.environ.get("HANDLER_SLEEP", "0"))


def record(payload: Any) -> None:
    """Sleep a moment, then record the payload's "n" in a set and count the call."""
    if _sleep:
        time.sleep(_sleep)
    pipe = _r.pipeline(transaction=False)
    pipe.sadd(_key, payload["n"])
    pipe.incr(f"{_key}:calls")
    pipe.execute()


not_callable = 42


def logged(guard: Any) -> None:
    """Log ``n:attempts`` of every call (``--pass-guard``); a payload with ``"poison"``
    then kills the process (``os._exit``: no cleanup, like a segfault in a C library)."""
    _r.rpush(f"{_key}:log", f"{guard.payload['n']}:{guard.attempts}")
    if _sleep:
        time.sleep(_sleep)
    if guard.payload.get("poison"):
        os._exit(3)


def calls(r: redis.Redis, key: str) -> list[tuple[int, int]]:
    """What ``logged`` recorded under ``key``: (n, attempts) per call, in order."""
    entries = [e.decode().split(":") for e in r.lrange(f"{key}:log", 0, -1)]
    return [(int(n), int(attempts)) for n, attempts in entries]


def stamped(guard: Any) -> None:
    """Log ``n:attempts:server ms:pid`` of every start (``--pass-guard``)."""
    seconds, micros = _r.time()
    stamp = seconds * 1000 + micros // 1000
    _r.rpush(f"{_key}:log", f"{guard.payload['n']}:{guard.attempts}:{stamp}:{os.getpid()}")


def stuck(payload: Any) -> None:
    """A payload with ``"stuck"`` never returns; any other is recorded (``record``)."""
    if payload.get("stuck"):
        while True:
            time.sleep(3600)
    record(payload)
