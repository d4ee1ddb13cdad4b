"""Scenario 7: many messages through one consumer, in this process, under tracemalloc.

A consumer must hold nothing per message once the message is settled, and the
queue's keys must come back to what they were before.
"""

from __future__ import annotations

import gc
import os
import time
import tracemalloc

from orizuru_py import Consumer, Producer
from tests.support import keys_of

from .accounting import Figures, cleanup, left_in, new_queue
from .ledger import connect

_PUSH_CHUNK = 10_000


def rss_bytes() -> int:
    """Resident set size of this process (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def memory(url: str, *, messages: int, warmup: int = 1000) -> Figures:
    """Push ``messages``, handle and ack them one at a time with one ``Consumer``; measure
    the memory still allocated (tracemalloc, all Python allocations of this process) and
    the RSS after ``warmup`` messages and at the end. Figures: ``traced_growth_bytes``,
    ``rss_growth_bytes``, ``lost``, ``duplicates``, ``keys_before``, ``keys_after``."""
    if not 0 < warmup < messages:
        raise ValueError(f"warmup must be between 0 and messages, got {warmup}")
    queue = new_queue("memory")
    r = connect(url)
    try:
        keys_before = len(keys_of(r, queue))
        producer = Producer(r, queue)
        for start in range(0, messages, _PUSH_CHUNK):
            producer.push_many({"n": n} for n in range(start, min(start + _PUSH_CHUNK, messages)))
        seen = bytearray(messages)  # allocated up front: the loop itself keeps nothing
        tracemalloc.start()
        try:
            t0 = time.monotonic()
            with Consumer(r, queue) as consumer:
                for n in range(messages):
                    if n == warmup:
                        traced_before, rss_before = _traced(), rss_bytes()
                    guard = consumer.next(timeout=10)
                    if guard is None:
                        break
                    seen[guard.payload["n"]] += 1
                    guard.ack()
                traced_after, rss_after = _traced(), rss_bytes()
            seconds = time.monotonic() - t0
        finally:
            tracemalloc.stop()
        handled = messages - seen.count(0)
        return {
            "scenario": "memory",
            "messages": messages,
            "handled": handled,
            "lost": messages - handled,
            "duplicates": sum(seen) - handled,
            "traced_growth_bytes": traced_after - traced_before,
            "rss_growth_bytes": rss_after - rss_before,
            "keys_before": keys_before,
            "keys_after": len(keys_of(r, queue)),
            "left": left_in(r, queue),
            "seconds": round(seconds, 2),
        }
    finally:
        cleanup(r, queue)
