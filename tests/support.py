"""Helpers the tests share."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis


def keys_of(r: redis.Redis, queue: str) -> list[bytes]:
    """Every key of ``queue`` in the server (tests may SCAN; the library never does)."""
    return sorted(r.scan_iter(match=f"*{{{queue}}}*", count=1000))


def wait_for(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
