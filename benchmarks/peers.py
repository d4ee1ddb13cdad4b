"""The peer queues on the same server, with the same job (taking one 100-byte message as
its argument: a no-op, or one of ``loads.py``), each in a fresh interpreter of its own:
rq and huey install signal handlers, which only the main thread may do.

- rq: ``SimpleWorker`` in burst mode. rq has no threads: one process, one job at a time.
- dramatiq: ``RedisBroker`` and a ``Worker`` of 8 threads (or as many as asked), default
  middleware.
- huey: ``RedisHuey`` and its consumer with 8 thread workers (or as many as asked).

Each is timed from starting its worker until every job has run (and, where the
peer acknowledges, been acknowledged); enqueuing is untimed. Every key carries the
run's prefix, so the run's cleanup removes it.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
from collections.abc import Callable
from typing import Any

import attrs
import redis
from fresh import run_isolated
from loads import LOADS, Load

from orizuru_py.ops.bench import Counter, message
from orizuru_py.ops.benchdata import Bench, Case, Limit, Result, Skipped, Timer

TIMEOUT = 180.0  # the slowest peer runs its jobs in ~10 s
DONE = Counter()  # the jobs run in this process, by any peer


def job(payload: Any) -> None:
    """The no-op job every peer runs (a plain module-level function, as rq imports it)."""
    DONE(payload)


def _jobs(load: Load) -> Any:
    """The job of ``load``, counted once it returns (an attribute of ``DONE``'s module, so
    dramatiq and huey name it after the load)."""

    def work(payload: Any) -> None:
        load.run(payload)
        DONE(payload)

    work.__name__ = work.__qualname__ = f"job_{load.name}"
    return work


def _rq(url: str, prefix: str, n: int, threads: int, load: Load) -> Result:
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


def _dramatiq(url: str, prefix: str, n: int, threads: int, load: Load) -> Result:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=url, namespace=f"{prefix}-dramatiq")  # type: ignore[no-untyped-call]
    dramatiq.set_broker(broker)
    actor = dramatiq.actor(queue_name="bench", broker=broker)(_jobs(load))
    for i in range(n):
        actor.send(message(i))
    worker = dramatiq.Worker(broker, worker_threads=threads)
    try:
        with Timer(broker.client) as t:
            worker.start()
            DONE.wait(n, TIMEOUT)
            broker.join("bench", interval=2, timeout=int(TIMEOUT * 1000))  # acked too
    finally:
        worker.stop()
    return t.result(n)


def _huey(url: str, prefix: str, n: int, threads: int, load: Load) -> Result:
    from huey import RedisHuey  # type: ignore[import-untyped]

    huey = RedisHuey(name=f"{prefix}-huey", url=url)
    task = huey.task()(_jobs(load))
    for i in range(n):
        task(message(i))
    consumer = huey.create_consumer(workers=threads, worker_type="thread")
    try:
        with Timer(redis.Redis.from_url(url)) as t:
            consumer.start()
            DONE.wait(n, TIMEOUT)  # huey takes a job off Redis before running it: no ack
    finally:
        consumer.stop(graceful=True)
    return t.result(n)


_PEERS: dict[str, Callable[[str, str, int, int, Load], Result]] = {
    "rq": _rq,
    "dramatiq": _dramatiq,
    "huey": _huey,
}


def measure(
    peer: str, url: str, prefix: str, messages: int, concurrency: int = 8, load: str = "noop"
) -> dict[str, Any]:
    """Run one peer in this (fresh) interpreter at ``concurrency`` threads (rq: one
    process, whatever asked) with the job of ``load``; its ``Result`` as a dict."""
    return attrs.asdict(_PEERS[peer](url, prefix, messages, concurrency, LOADS[load]))


def isolated(
    peer: str, module: str = "peers", package: str | None = None, **options: Any
) -> Callable[[Bench, int], Result]:
    """Measure ``peer`` with ``module.measure`` (given ``options`` too) in a fresh
    interpreter. ``Skipped`` when its ``package`` (default: the peer's name) is not
    installed, when ``measure`` answers ``{"skipped": reason}`` instead of a ``Result``,
    or when the peer fails or hangs: the others are measured all the same."""

    def run(b: Bench, n: int) -> Result:
        if importlib.util.find_spec(package or peer) is None:
            raise Skipped(f"{package or peer} is not installed (pip install -e '.[bench]')")
        kwargs = {"peer": peer, "url": b.url, "prefix": b.prefix, "messages": n, **options}
        try:
            done = run_isolated(module, "measure", kwargs, TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Skipped(f"{peer} did not run {n} jobs within {TIMEOUT:.0f} s") from None
        except RuntimeError as exc:
            raise Skipped(f"{peer} failed: {_last_line(str(exc))}") from None
        if "skipped" in done:
            raise Skipped(done["skipped"])
        return Result(**done)

    return run


def _last_line(text: str) -> str:
    """The last line of a traceback, without the directories of installed files."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return re.sub(r"/\S*/site-packages/", "", lines[-1])[:200] if lines else "no message"


def cases(rq: int, dramatiq: int, huey: int) -> list[Case]:
    """The three peers with the no-op job, sized in jobs (rq is about ten times slower
    than the others)."""
    return [
        Case("rq", "rq SimpleWorker burst, 1 process", rq, isolated("rq")),
        Case("dramatiq", "dramatiq Worker, 8 threads", dramatiq, isolated("dramatiq")),
        Case("huey", "huey consumer, 8 threads", huey, isolated("huey")),
    ]


def loaded_cases(threads: int, load: Load, n: int, limit: Limit) -> list[Case]:
    """dramatiq and huey at ``threads`` threads running ``load``'s job."""
    tag = f"{load.name}_t{threads}"
    return [
        Case(
            f"{peer}_{tag}",
            f"{peer} {threads} threads, {load.label}",
            n,
            isolated(peer, concurrency=threads, load=load.name),
            limit=limit,
        )
        for peer in ("dramatiq", "huey")
    ]
