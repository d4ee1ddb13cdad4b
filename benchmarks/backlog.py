"""What a backlog costs: the price per message with 10, 10^4 and 10^6 messages waiting,
the server memory a queued message takes, and the memory of a consumer process that
works through 10^6 of them."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import redis
from fresh import run_isolated

from orizuru_py.consumer import Consumer
from orizuru_py.ops.bench import BATCH, fill, take_batches, take_single
from orizuru_py.ops.benchdata import Bench, Case, Result, Row, Timer
from orizuru_py.producer import Producer

DEPTHS = (10, 10_000, 1_000_000)


def depth_name(batched: bool, depth: int) -> str:
    return f"depth_{'batch' if batched else 'single'}_{depth}"


@attrs.define
class DepthProbe:
    """Consume with ``depth`` other messages waiting: each step pushes ``BATCH`` more
    (untimed) and takes them back (timed), so the backlog stays between ``depth`` and
    ``depth + BATCH``. The backlog is filled on first use and kept until ``close``."""

    depth: int
    batched: bool
    queue: str | None = None
    consumer: Consumer | None = None
    _next: int = 0

    def __call__(self, b: Bench, n: int) -> Result:
        if self.queue is None or self.consumer is None:
            self.queue = b.queue(f"depth-{self.depth}")
            fill(b, self.queue, self.depth)
            self.consumer = Consumer(b.r, self.queue, prefix=b.prefix)
            self._next = self.depth
        take = take_batches if self.batched else take_single
        total, done = Result(0, 0.0, 0.0, 0.0), 0
        while done < n:
            step = min(BATCH, n - done)
            fill(b, self.queue, step, self._next)
            self._next += step
            with Timer(b.r) as t:
                take(self.consumer, step)
            total += t.result(step)
            done += step
        return total

    def close(self, b: Bench) -> None:
        """Close the consumer and delete the backlog (again: a no-op)."""
        if self.consumer is not None and self.queue is not None:
            self.consumer.close()
            b.drop(self.queue)
        self.consumer = self.queue = None


def depth_rows(
    b: Bench, single: int, batched: int, rounds: int, log: Callable[[str], None] = print
) -> dict[str, Row]:
    """Per path, ``rounds`` results per depth. Depths alternate every ``BATCH`` messages
    (10, 10^4, 10^6, 10, ...), so drifting load on a shared machine hits them alike."""
    rows: dict[str, Row] = {}
    probes: list[DepthProbe] = []
    try:
        for is_batch in (False, True):
            path = f"next_batch({BATCH})+ack_many" if is_batch else "next+ack"
            n = batched if is_batch else single
            mine = {d: DepthProbe(d, is_batch) for d in DEPTHS}
            probes += mine.values()
            names = {d: depth_name(is_batch, d) for d in DEPTHS}
            for d in DEPTHS:
                rows[names[d]] = Row(Case(names[d], f"{path}, {d:,} queued", n, mine[d]))
            for i in range(1, rounds + 1):
                parts: dict[int, list[Result]] = {d: [] for d in DEPTHS}
                for _ in range(0, n, BATCH):
                    for d in DEPTHS:
                        parts[d].append(mine[d](b, BATCH))
                for d in DEPTHS:
                    result = sum(parts[d][1:], parts[d][0])
                    rows[names[d]].results.append(result)
                    log(f"  round {i}/{rounds} {names[d]:<22} {result.rate:>10,.0f} msg/s")
    finally:
        for probe in probes:
            probe.close(b)
    return rows


STORED_PAYLOAD = 90  # bytes the application hands over, per message
STORED_TARGET = 1.25  # a queued message's memory against the raw list's, at most


def stored_bytes(b: Bench, n: int) -> dict[str, Any]:
    """Server memory per queued message (``MEMORY USAGE``, every element counted) with a
    payload of ``STORED_PAYLOAD`` bytes: a raw list of the bytes as they are, and a queue
    of them pushed by ``push_many`` (the default codec, the envelope) and by ``push`` with
    a unique key (its extension; the key's hash entries are not counted)."""
    payload = b"x" * STORED_PAYLOAD
    raw_key, plain, keyed = f"{b.prefix}:raw-stored", b.queue("stored"), b.queue("stored-keyed")
    try:
        for lo in range(0, n, 1000):
            b.r.lpush(raw_key, *[payload] * min(1000, n - lo))
            Producer(b.r, plain, prefix=b.prefix).push_many([payload] * min(1000, n - lo))
        keyed_n = min(n, 10_000)
        producer = Producer(b.r, keyed, prefix=b.prefix)
        for i in range(keyed_n):
            producer.push(payload, unique_key=f"order-{i:08d}")
        per = {
            "raw": b.r.memory_usage(raw_key, samples=0) / n,
            "queued": b.r.memory_usage(b.keys(plain).queue, samples=0) / n,
            "queued_unique": b.r.memory_usage(b.keys(keyed).queue, samples=0) / keyed_n,
        }
    finally:
        b.r.delete(raw_key)
        b.drop(plain)
        b.drop(keyed)
    return {
        "messages": n,
        "payload_bytes": STORED_PAYLOAD,
        **per,
        "ratio": per["queued"] / per["raw"],
    }


def memory(b: Bench, n: int) -> dict[str, Any]:
    """RSS of a fresh consumer process taking ``n`` waiting messages by the batch path."""
    queue = b.queue("memory")
    fill(b, queue, n)
    kwargs = {"url": b.url, "queue": queue, "prefix": b.prefix, "n": n}
    try:
        return run_isolated("backlog", "consumer_memory", kwargs, 900.0)  # type: ignore[no-any-return]
    finally:
        b.drop(queue)


def consumer_memory(
    url: str, queue: str, prefix: str, n: int, every: int = 10_000
) -> dict[str, Any]:
    """Consume ``n`` waiting messages with the batch path, sampling this process's RSS
    every ``every`` messages. Meant for a fresh interpreter."""
    r = redis.Redis.from_url(url)
    consumer = Consumer(r, queue, prefix=prefix)
    gc.collect()
    base = rss_kib()
    samples, done = [base], 0
    with Timer(r) as t:
        while done < n:
            step = min(every, n - done)
            take_batches(consumer, step)
            done += step
            samples.append(rss_kib())
    consumer.close()
    return {
        "messages": n,
        "seconds": t.seconds,
        "cpu": t.cpu,
        "rss_start_kib": base,
        "rss_peak_kib": max(samples),
        "rss_end_kib": samples[-1],
        "rss_growth_kib": samples[-1] - base,
        "sample_every": every,
    }


def rss_kib() -> int:
    """This process's resident set size in KiB (Linux), or its peak where /proc is absent."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
