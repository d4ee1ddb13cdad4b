"""Counting at the end of a scenario: what was handled, lost, duplicated, left behind.

Figures, not assertions: the tests assert on them, ``benchmarks/reliability.py``
prints them. Common figures: ``pushed`` (pushes that returned an id), ``handled``
(unique ids handled), ``events`` (handlings), ``duplicates`` (events - handled),
``lost`` (pushed ids never handled), ``late_acks`` (acks that returned False),
``left`` (messages still in a list of the queue once everything stopped, by key,
dead letters included), ``crashes`` (consumer processes that died on their own).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orizuru_py import QueueKeys
from tests.support import keys_of

from .fleet import Fleet
from .ledger import Ledger

Figures = dict[str, Any]
STALL = 15.0  # seconds without any progress after which a scenario's messages are stuck


def new_queue(kind: str) -> str:
    return f"faults-{kind}-{uuid.uuid4().hex[:10]}"


def wait_until(check: Callable[[], Any], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``check`` until it is truthy (True) or ``timeout`` passes (False). A connection
    error counts as not yet: the server may be restarting."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if check():
                return True
        except (RedisConnectionError, RedisTimeoutError):
            pass
        time.sleep(interval)
    return False


def left_in(r: Any, queue: str) -> dict[str, int]:
    """Messages in each non-empty list (or the delayed set) of the queue, by key suffix.
    The hashes of bookkeeping (consumers' info, totals) hold no message."""
    keys = QueueKeys(queue)
    left = {}
    for raw in keys_of(r, queue):
        key = raw.decode()
        if key == keys.delayed:
            left["delayed"] = int(r.zcard(key))
        elif key != keys.consumers and r.type(key) == b"list":
            left[key.removeprefix(keys.base + ":")] = int(r.llen(key))
    return left


def audit(r: Any, queue: str, ledger: Ledger, expected: Collection[str]) -> Figures:
    handled = ledger.handled_ids()
    events = ledger.events()
    return {
        "pushed": len(expected),
        "handled": len(handled),
        "events": events,
        "duplicates": events - len(handled),
        "lost": len(set(expected) - handled),
        "late_acks": ledger.late_acks(),
        "left": left_in(r, queue),
    }


def wait_drained(
    r: Any,
    queue: str,
    ledger: Ledger,
    expected: Collection[str],
    *,
    timeout: float,
    stall: float = STALL,
) -> bool:
    """Wait until every expected id is handled and every list of the queue is empty. Gives
    up after ``timeout`` s, or once nothing has changed for ``stall`` s (stuck: nothing
    will). Connection errors count as no news (the server may be restarting)."""
    want = set(expected)
    now = time.monotonic()
    end, changed = now + timeout, now
    last: tuple[int, dict[str, int]] | None = None
    state = last
    while now < end and now - changed < stall:
        try:
            handled, left = state = (ledger.handled(), left_in(r, queue))
            if handled >= len(want) and not left and want <= ledger.handled_ids():
                return True
        except (RedisConnectionError, RedisTimeoutError):
            state = last
        if state != last:
            last, changed = state, now
        time.sleep(0.1)
        now = time.monotonic()
    return False


def settle(
    r: Any,
    queue: str,
    ledger: Ledger,
    expected: Collection[str],
    fleet: Fleet,
    *,
    timeout: float,
    heartbeat_timeout: float,
) -> Figures:
    """``wait_drained``, stop the fleet, wait for a running GC to reap the consumers killed
    on the way, and count. ``drained`` says whether everything was handled before the
    fleet stopped; ``crash_logs`` holds the log tails of crashed consumers."""
    start = time.monotonic()
    drained = wait_drained(r, queue, ledger, expected, timeout=timeout)
    seconds = time.monotonic() - start
    fleet.stop()
    wait_until(lambda: not r.exists(QueueKeys(queue).consumers), 3 * heartbeat_timeout + 10)
    crashes = fleet.crashes()
    return audit(r, queue, ledger, expected) | {
        "drained": drained,
        "drain_seconds": round(seconds, 2),
        "crashes": len(crashes),
        "crash_logs": crashes,
    }


def cleanup(r: Any, queue: str) -> None:
    """Delete the queue's keys and its ledger."""
    Ledger(r, queue).clear()
    keys = keys_of(r, queue)
    if keys:
        r.delete(*keys)
