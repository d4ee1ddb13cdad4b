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
