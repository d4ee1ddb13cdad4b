"""``orizuru demo``: the guarantee, shown end to end on a real server.

Pushes messages, consumes them with several consumer processes, SIGKILLs one
while it holds a batch, lets the garbage collector return that batch, and
counts: pushed, acked, recovered, lost (which must be 0), throughput.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from typing import TextIO

import attrs
import redis

from ..collector import GarbageCollector
from ..consumer import Consumer
from ..keys import QueueKeys
from ..producer import Producer

HEARTBEAT_TIMEOUT = 2.0
BATCH = 50


@attrs.frozen
class DemoResult:
    pushed: int
    handled: int
    duplicates: int
    recovered: int
    lost: int
    push_rate: float
    throughput: float


def _consume(url: str, queue: str, victim: bool) -> None:
    """A consumer process: record each message in a Redis set, then ack the batch.
    The victim takes one batch and holds it, waiting to be killed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the parent's to handle
    r = redis.Redis.from_url(url)
    consumer = Consumer(r, queue, heartbeat_timeout=HEARTBEAT_TIMEOUT)
    handled, events = f"{queue}:demo:handled", f"{queue}:demo:events"
    if victim:
        held = consumer.next_batch(BATCH, timeout=30)
        r.set(f"{queue}:demo:held", len(held))
        time.sleep(3600)
    while guards := consumer.next_batch(BATCH, timeout=2.0):
        pipe = r.pipeline(transaction=False)
        pipe.sadd(handled, *(g.id for g in guards))
        pipe.incrby(events, len(guards))
        pipe.execute()
        consumer.ack_many(guards)
    consumer.close()


@contextlib.contextmanager
def _quiet_collector() -> Iterator[None]:
    """Only the collector's errors: the table's "recovered" line tells what it did, and
    its log lines (stderr, the same screen) would cut through the table."""
    logger = logging.getLogger("orizuru_py.collector")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_demo(url: str, messages: int, consumers: int, out: TextIO) -> DemoResult:
    """Run the demo on a queue of its own, whose keys it deletes at the end, and on a
    Ctrl-C too (after killing its consumer processes)."""
    r = redis.Redis.from_url(url)
    queue = f"demo-{uuid.uuid4().hex[:8]}"
    processes: list[multiprocessing.process.BaseProcess] = []
    try:
        with _quiet_collector():
            return _demo(r, url, queue, messages, consumers, processes, out)
    except KeyboardInterrupt:
        out.write(f"interrupted: stopping the consumers and deleting queue {queue}\n")
        raise
    finally:
        for p in processes:
            if p.pid is not None:  # started (a Ctrl-C may come while they start)
                p.kill()
                p.join()
        _delete(r, queue)


def _delete(r: redis.Redis, queue: str) -> None:
    """Every key the demo's queue has (its consumers' lists found through the consumer
    set: no SCAN) and the demo's own, and the queue's name in the registry."""
    k = QueueKeys(queue)
    members: list[bytes] = r.zrange(k.consumers, 0, -1)  # type: ignore[assignment]
    lists = [key for member in members for key in k.of_member(member)]
    demo_keys = [f"{queue}:demo:{name}" for name in ("handled", "events", "held")]
    r.delete(*k.all_fixed(), *lists, *demo_keys)
    r.srem(k.registry, queue)


def _demo(
    r: redis.Redis,
    url: str,
    queue: str,
    messages: int,
    consumers: int,
    processes: list[multiprocessing.process.BaseProcess],
    out: TextIO,
) -> DemoResult:
    def say(line: str) -> None:
        out.write(line)
        out.flush()

    producer = Producer(r, queue)
    t0 = time.perf_counter()
    producer.push_many({"n": i, "body": "x" * 80} for i in range(messages))
    push_rate = messages / (time.perf_counter() - t0)
    say(f"pushed      {messages:>7}   to {queue} ({push_rate:,.0f} msg/s with push_many)\n")

    ctx = multiprocessing.get_context("spawn")
    victim = ctx.Process(target=_consume, args=(url, queue, True), daemon=True)
    processes.append(victim)
    victim.start()
    while not r.exists(f"{queue}:demo:held"):
        time.sleep(0.01)
    held = int(r.get(f"{queue}:demo:held") or 0)
    assert victim.pid is not None
    os.kill(victim.pid, 9)
    victim.join()
    say(f"killed      1 consumer with SIGKILL while it held {held} messages\n")

    t1 = time.perf_counter()
    workers = [
        ctx.Process(target=_consume, args=(url, queue, False), daemon=True)
        for _ in range(consumers)
    ]
    processes += workers
    for w in workers:
        w.start()
    gc = GarbageCollector(r, queue)
    recovered, drained = 0, None
    handled_key = f"{queue}:demo:handled"
    deadline = time.monotonic() + 60 + messages / 1000
    while (done := int(r.scard(handled_key))) < messages and time.monotonic() < deadline:
        if drained is None and done >= messages - held:
            drained = time.perf_counter() - t1
        recovered += gc.collect().requeued
        time.sleep(0.05)
    for w in workers:
        w.join(30)
    elapsed = time.perf_counter() - t1
    throughput = (messages - held) / (drained or elapsed)
    say(
        f"recovered   {recovered:>7}   by the GC once the killed consumer's deadline passed "
        f"({HEARTBEAT_TIMEOUT:.0f} s)\n"
    )
    handled = int(r.scard(handled_key))
    duplicates = int(r.get(f"{queue}:demo:events") or 0) - handled
    lost = messages - handled
    say(f"acked       {handled:>7}   by {consumers} consumer processes ({duplicates} duplicates)\n")
    say(f"lost        {lost:>7}\n")
    say(
        f"throughput  {throughput:>7,.0f}   msg/s consumed and acked "
        f"({elapsed:.1f} s in all, recovery included)\n"
    )
    return DemoResult(messages, handled, duplicates, recovered, lost, push_rate, throughput)


def main(url: str | None, messages: int, consumers: int, out: TextIO = sys.stdout) -> int:
    """Run the demo on ``url``, or on an embedded server when it is None. Exit 1 on loss."""
    if url is None:
        from .embedded import EmbeddedServer

        with EmbeddedServer() as server:
            out.write(f"orizuru demo on an embedded Valkey server ({server.url})\n")
            return 1 if run_demo(server.url, messages, consumers, out).lost else 0
    out.write(f"orizuru demo on {url}\n")
    return 1 if run_demo(url, messages, consumers, out).lost else 0
