"""The peer queues on the same server, with the same no-op job (taking one 100-byte
message as its argument), each in a fresh interpreter of its own: rq and huey
install signal handlers, which only the main thread may do.

- rq: ``SimpleWorker`` in burst mode. rq has no threads: one process, one job at a time.
- dramatiq: ``RedisBroker`` and a ``Worker`` of 8 threads, default middleware.
- huey: ``RedisHuey`` and its consumer with 8 thread workers.

Each is timed from starting its worker until every job has run (and, where the
peer acknowledges, been acknowledged); enqueuing is untimed. Every key carries the
run's prefix, so the run's cleanup removes it.
"""

from __future__ import annotations

import importlib.util
import subprocess
from collections.abc import Callable
from typing import Any

import attrs
import redis
from fresh import run_isolated

from orizuru_py.ops.bench import Bench, Case, Counter, Result, Skipped, Timer, message

TIMEOUT = 180.0  # the slowest peer runs its jobs in ~10 s
DONE = Counter()  # the jobs run in this process, by any peer


def job(payload: Any) -> None:
    """The no-op job every peer runs (a plain module-level function, as rq imports it)."""
    DONE(payload)


def _rq(url: str, prefix: str, n: int) -> Result:
    from rq import Queue, SimpleWorker

    r = redis.Redis.from_url(url)
    queue = Queue(f"{prefix}-rq", connection=r)
    for lo in range(0, n, 1000):
        queue.enqueue_many(
            [
                Queue.prepare_data(job, args=(message(i),), job_id=f"{prefix}-rq-{i}")
                for i in range(lo, min(lo + 1000, n))
            ]
        )
    worker = SimpleWorker([queue], connection=r, name=f"{prefix}-rq-worker")
    with Timer(r) as t:
        worker.work(burst=True, logging_level="WARNING")
    if len(DONE) != n:
        raise RuntimeError(f"rq ran {len(DONE)} of {n} jobs")
    # rq's global sets hold our names without our prefix in the key: remove them too.
    r.srem("rq:queues", queue.key)
    return t.result(n)


def _dramatiq(url: str, prefix: str, n: int) -> Result:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=url, namespace=f"{prefix}-dramatiq")  # type: ignore[no-untyped-call]
    dramatiq.set_broker(broker)
    noop = dramatiq.actor(queue_name="bench", broker=broker)(job)
    for i in range(n):
        noop.send(message(i))
    worker = dramatiq.Worker(broker, worker_threads=8)
    try:
        with Timer(broker.client) as t:
            worker.start()
            DONE.wait(n, TIMEOUT)
            broker.join("bench", interval=2, timeout=int(TIMEOUT * 1000))  # acked too
    finally:
        worker.stop()
    return t.result(n)


def _huey(url: str, prefix: str, n: int) -> Result:
    from huey import RedisHuey  # type: ignore[import-untyped]

    huey = RedisHuey(name=f"{prefix}-huey", url=url)
    noop = huey.task()(job)
    for i in range(n):
        noop(message(i))
    consumer = huey.create_consumer(workers=8, worker_type="thread")
    try:
        with Timer(redis.Redis.from_url(url)) as t:
            consumer.start()
            DONE.wait(n, TIMEOUT)  # huey takes a job off Redis before running it: no ack
    finally:
        consumer.stop(graceful=True)
    return t.result(n)


_PEERS: dict[str, Callable[[str, str, int], Result]] = {
    "rq": _rq,
    "dramatiq": _dramatiq,
    "huey": _huey,
}


def measure(peer: str, url: str, prefix: str, messages: int) -> dict[str, Any]:
    """Run one peer in this (fresh) interpreter; its ``Result`` as a dict."""
    return attrs.asdict(_PEERS[peer](url, prefix, messages))


def isolated(
    peer: str, module: str = "peers", package: str | None = None
) -> Callable[[Bench, int], Result]:
    """Measure ``peer`` with ``module.measure`` in a fresh interpreter. ``Skipped`` when its
    ``package`` (default: the peer's name) is not installed, or when ``measure`` answers
    ``{"skipped": reason}`` instead of a ``Result``."""

    def run(b: Bench, n: int) -> Result:
        if importlib.util.find_spec(package or peer) is None:
            raise Skipped(f"{package or peer} is not installed (pip install -e '.[bench]')")
        kwargs = {"peer": peer, "url": b.url, "prefix": b.prefix, "messages": n}
        try:
            done = run_isolated(module, "measure", kwargs, TIMEOUT)
        except subprocess.TimeoutExpired:  # a peer that hangs leaves the others measured
            raise Skipped(f"{peer} did not run {n} jobs within {TIMEOUT:.0f} s") from None
        if "skipped" in done:
            raise Skipped(done["skipped"])
        return Result(**done)

    return run


def cases(rq: int, dramatiq: int, huey: int) -> list[Case]:
    """The three peers, sized in jobs (rq is about ten times slower than the others)."""
    return [
        Case("rq", "rq SimpleWorker burst, 1 process", rq, isolated("rq")),
        Case("dramatiq", "dramatiq Worker, 8 threads", dramatiq, isolated("dramatiq")),
        Case("huey", "huey consumer, 8 threads", huey, isolated("huey")),
    ]
