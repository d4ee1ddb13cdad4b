"""Throughput of orizuru_py's own paths: ``orizuru bench``, and the building blocks of
``benchmarks/run.py`` (which adds raw redis-py ceilings and the peer queues).

Each measurement prefills what it consumes (untimed), times only the path itself
and deletes its keys. Rounds are interleaved (A, B, C, A, B, C, ...) and each case
reports its median, because the machines we measure on are shared and noisy.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..consumer import Consumer
from ..observer import Observer
from ..producer import Producer
from ..worker import Worker
from . import benchreport
from .benchdata import Bench, Case, Result, Row, Skipped, Timer

BATCH = 100  # messages per batch on every batched path
_FILL_CHUNK = 10_000
_WAIT = 120.0  # seconds any one measurement may wait for its messages


def message(i: int) -> dict[str, str]:
    """Message ``i``: distinct, and exactly 100 bytes as msgpack (as in the issue's figures)."""
    return {"n": f"{i:08d}", "pad": "x" * 82}


# -- the measurements ---------------------------------------------------------------


def fill(b: Bench, queue: str, n: int, start: int = 0) -> None:
    """Queue messages ``start`` to ``start + n`` with ``push_many`` (untimed setup)."""
    producer = Producer(b.r, queue, prefix=b.prefix)
    for lo in range(start, start + n, _FILL_CHUNK):
        producer.push_many([message(i) for i in range(lo, min(lo + _FILL_CHUNK, start + n))])


def push(b: Bench, n: int) -> Result:
    """``Producer.push``, one message per call."""
    queue = b.queue("push")
    producer = Producer(b.r, queue, prefix=b.prefix)
    payloads = [message(i) for i in range(n)]
    with Timer(b.r) as t:
        for p in payloads:
            producer.push(p)
    b.drop(queue)
    return t.result(n)


def push_unique(b: Bench, n: int) -> Result:
    """``Producer.push`` with a ``unique_key`` (each its own), one message per call."""
    queue = b.queue("push-unique")
    producer = Producer(b.r, queue, prefix=b.prefix)
    payloads = [message(i) for i in range(n)]
    producer.push(payloads[0], unique_key="warm")  # the server loads push.lua once
    with Timer(b.r) as t:
        for i, p in enumerate(payloads):
            producer.push(p, unique_key=f"k{i}")
    b.drop(queue)
    return t.result(n)


def push_many(b: Bench, n: int) -> Result:
    """``Producer.push_many`` in batches of ``BATCH``."""
    queue = b.queue("push-many")
    producer = Producer(b.r, queue, prefix=b.prefix)
    batches = [[message(i) for i in range(lo, min(lo + BATCH, n))] for lo in range(0, n, BATCH)]
    with Timer(b.r) as t:
        for batch in batches:
            producer.push_many(batch)
    b.drop(queue)
    return t.result(n)


def next_ack(b: Bench, n: int) -> Result:
    """``Consumer.next`` then ``guard.ack``, one message at a time, from a full queue."""
    queue = b.queue("next-ack")
    fill(b, queue, n)
    with Consumer(b.r, queue, prefix=b.prefix) as consumer, Timer(b.r) as t:
        take_single(consumer, n)
    b.drop(queue)
    return t.result(n)


def batch(b: Bench, n: int) -> Result:
    """``Consumer.next_batch(BATCH)`` then ``Consumer.ack_many``, from a full queue."""
    queue = b.queue("batch")
    fill(b, queue, n)
    with Consumer(b.r, queue, prefix=b.prefix) as consumer, Timer(b.r) as t:
        take_batches(consumer, n)
    b.drop(queue)
    return t.result(n)


def take_single(consumer: Consumer, n: int) -> None:
    """Take and ack ``n`` waiting messages one at a time."""
    for _ in range(n):
        guard = consumer.next(timeout=_WAIT)
        if guard is None:
            raise RuntimeError(f"queue {consumer.queue} ran dry")
        guard.ack()


def take_batches(consumer: Consumer, n: int) -> None:
    """Take and ack ``n`` waiting messages in batches of up to ``BATCH``."""
    got = 0
    while got < n:
        guards = consumer.next_batch(min(BATCH, n - got), timeout=_WAIT)
        if not guards:
            raise RuntimeError(f"queue {consumer.queue} ran dry")
        consumer.ack_many(guards)
        got += len(guards)


class Counter:
    """A job that runs ``work`` (by default nothing) and counts its calls (``deque.append``
    is atomic across threads)."""

    def __init__(self, work: Callable[[Any], object] | None = None) -> None:
        self._calls: collections.deque[None] = collections.deque()
        self._work = work

    def __call__(self, payload: Any = None, *args: Any) -> None:
        if self._work is not None:
            self._work(payload)
        self._calls.append(None)

    def __len__(self) -> int:
        return len(self._calls)

    def wait(self, n: int, timeout: float = _WAIT) -> None:
        """Return once called ``n`` times; raise ``TimeoutError`` after ``timeout`` s."""
        wait_until(lambda: len(self) >= n, timeout, f"{len(self)} of {n} jobs ran")


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.002) -> None:
    """Poll ``check`` every ``every`` s until it is true; raise ``TimeoutError`` after
    ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s: {what}")
        time.sleep(every)


def worker(
    b: Bench,
    n: int,
    observer: Observer | None = None,
    queues: int = 1,
    concurrency: int = 8,
    work: Callable[[Any], object] | None = None,
    **options: Any,
) -> Result:
    """``Worker`` whose handler runs ``work`` (default: nothing), timed from start until
    every message is handled and acked (stopping it is not timed). With several ``queues``,
    the messages are spread evenly over them (strict priority: one after the other).
    ``options`` go to the Worker (a rate limit, a time limit)."""
    names = [b.queue("worker") for _ in range(queues)]
    for i, queue in enumerate(names):
        share = n // queues + (1 if i < n % queues else 0)
        fill(b, queue, share, start=i * n)
    handler = Counter(work)
    w = Worker(
        b.r, names, handler, concurrency=concurrency, prefix=b.prefix, observer=observer, **options
    )
    thread = threading.Thread(target=w.run, name="bench-worker", daemon=True)
    try:
        with Timer(b.r) as t:
            thread.start()
            handler.wait(n)
            wait_until(lambda: w.stats.handled >= n, _WAIT, "acks")  # counted once acked
    finally:
        w.stop()
        thread.join(_WAIT)
    for queue in names:
        b.drop(queue)
    return t.result(n)


def worker_observed(b: Bench, n: int) -> Result:
    """The same, with an ``Observer`` whose methods do nothing: the cost of the calls."""
    return worker(b, n, Observer())


def worker_three_queues(b: Bench, n: int) -> Result:
    """The same on three queues in priority order, the messages a third in each."""
    return worker(b, n, queues=3)


def orizuru_cases(single: int, batched: int, workers: int, slices: int = 1) -> list[Case]:
    """orizuru_py's paths, sized in messages; ceilings name ``benchmarks/ceilings.py`` rows.
    The Worker is never sliced: its start-up would weigh on short parts. With an
    Observer, it is compared to the Worker without one (its "ceiling")."""
    return [
        Case("push", "orizuru Producer.push", single, push, "raw_lpush", slices),
        Case("next_ack", "orizuru next + ack", single, next_ack, "raw_blmove_lrem", slices),
        Case(
            "push_many",
            f"orizuru push_many ({BATCH})",
            batched,
            push_many,
            "raw_lpush_batch",
            slices,
        ),
        Case(
            "batch",
            f"orizuru next_batch({BATCH}) + ack_many",
            batched,
            batch,
            "raw_lua_batch",
            slices,
        ),
        Case("worker", "orizuru Worker no-op, 8 threads", workers, worker),
        Case(
            "worker_observer",
            "orizuru Worker no-op + no-op Observer",
            workers,
            worker_observed,
            "worker",
        ),
        Case("worker_3q", "orizuru Worker no-op, 3 queues", workers, worker_three_queues, "worker"),
        Case("push_unique", "orizuru push with unique_key", single, push_unique, "push", slices),
    ]


# -- running and reporting ------------------------------------------------------------


def run_rounds(
    b: Bench, cases: Sequence[Case], rounds: int, log: Callable[[str], None] = print
) -> dict[str, Row]:
    """Run every case once per round, interleaved (sliced cases part by part); a case
    that raises ``Skipped`` is noted and left out from then on."""
    rows = {c.name: Row(c) for c in cases}
    for i in range(1, rounds + 1):
        parts: dict[str, list[Result]] = {c.name: [] for c in cases}
        for part in range(max((c.slices for c in cases), default=0)):
            for case in cases:
                row = rows[case.name]
                if row.note or part >= case.slices:
                    continue
                gc.collect()
                try:
                    parts[case.name].append(case.measure(b, case.messages // case.slices))
                except Skipped as exc:
                    row.note = str(exc)
                    log(f"  {case.name}: skipped ({exc})")
        for name, done in parts.items():
            if done and not rows[name].note:
                result = sum(done[1:], done[0])
                rows[name].results.append(result)
                log(f"  round {i}/{rounds} {name:<18} {result.rate:>12,.0f} msg/s")
    return rows


@contextlib.contextmanager
def server(url: str | None) -> Iterator[str]:
    """``url``, or a private embedded server for the duration."""
    if url:
        yield url
        return
    from .embedded import EmbeddedServer

    with EmbeddedServer() as embedded:
        yield embedded.url


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``orizuru bench`` apart from the server, for any parser to share."""
    p.add_argument(
        "--messages",
        type=int,
        default=10_000,
        help="messages per measurement (default: %(default)s)",
    )
    p.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds, medians reported (default: 3)"
    )
    p.add_argument("--json", type=Path, help="also write the figures here (default: no file)")


def run(url: str | None, messages: int, rounds: int, json_path: Path | None) -> int:
    """Measure orizuru_py's paths on ``url`` (None: a private embedded server), print the
    table, write JSON where asked."""
    if messages < 1 or rounds < 1:
        raise ValueError("--messages and --rounds must be positive")
    cases = orizuru_cases(messages, messages, messages)
    return measure(url, "orizuru bench", cases, rounds, "", json_path)


def measure(
    url: str | None, what: str, cases: Sequence[Case], rounds: int, note: str,
    json_path: Path | None,
) -> int:  # fmt: skip
    """Run ``cases`` in interleaved rounds on ``url`` (None: a private embedded server),
    print the table (``note``: what its "vs ceiling" means) and write JSON where asked."""
    with server(url) as where:
        b = Bench(where)
        try:
            env = benchreport.environment(b)
            print(f"{what} on {env['server']}, {rounds} round(s):", flush=True)
            rows = run_rounds(b, cases, rounds)
        finally:
            b.cleanup()
    print(benchreport.format_table(rows))
    print(f"{note} {benchreport.TABLE_NOTE}".strip())
    if json_path:
        data = {"environment": env, "rows": benchreport.rows_json(rows)}
        json_path.write_text(json.dumps(data, indent=2))
        print(f"wrote {json_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``orizuru bench``: orizuru_py's paths on one server, as a table (and JSON)."""
    p = argparse.ArgumentParser(
        prog="orizuru bench",
        description="Measure orizuru_py's push, next+ack, batch and Worker throughput. "
        "benchmarks/run.py adds raw redis-py ceilings and the peer queues.",
    )
    p.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL"),
        help="server to measure (default: $REDIS_URL, else a private embedded server)",
    )
    add_arguments(p)
    args = p.parse_args(argv)
    if args.messages < 1 or args.rounds < 1:
        p.error("--messages and --rounds must be positive")
    return run(args.redis_url, args.messages, args.rounds, args.json)


if __name__ == "__main__":
    sys.exit(main())
