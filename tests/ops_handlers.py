"""Handlers that the operator tools' tests run through ``orizuru worker``."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import redis

from orizuru_py import MessageGuard

_handled = redis.Redis.from_url(os.environ.get("HANDLED_URL", "redis://127.0.0.1:6379/0"))


def fail_every_tenth(payload: Any) -> None:
    """Raise for every message whose "n" is a multiple of 10; return for the rest."""
    if payload["n"] % 10 == 0:
        raise ValueError(f"{payload['n']} is a multiple of 10")


def burn(payload: Any) -> int:
    """About a millisecond of pure-Python CPU work (it holds the GIL throughout)."""
    return sum(i * i for i in range(20_000))


def ack_itself(guard: MessageGuard) -> None:
    """A ``--pass-guard`` handler that settles its message itself."""
    guard.ack()


async def coroutine(payload: Any) -> None:
    """An ``async def`` handler (the asyncio Worker's): records the payload's ``n``."""
    await asyncio.to_thread(_handled.sadd, os.environ["HANDLED_KEY"], payload["n"])
