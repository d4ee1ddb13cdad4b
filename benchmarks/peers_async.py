"""The asyncio peer queues on the same server, with the same jobs as ``peers.py`` (a no-op,
or one of ``loads.py`` awaited), each in a fresh interpreter of its own, at the concurrency
asked or else the one its authors set by default:

- arq 0.25 (the last release that allows redis-py 6+; see pyproject.toml):
  ``arq.worker.Worker``, ``max_jobs=10`` (arq/worker.py, ``Worker.__init__``). Jobs wait in
  a sorted set that the worker polls every 0.5 s (``poll_delay``), reading at most
  ``queue_read_limit`` = max(5 x max_jobs, 100) ids per poll: about 200 jobs/s at most,
  and at most 10 x ``max_jobs`` a second whatever ``max_jobs`` is.
- saq 0.26: ``saq.Worker``, ``concurrency=10`` (saq/worker.py, ``Worker.__init__``).
- taskiq 0.13 with taskiq-redis's ``RedisStreamBroker`` (the one that acknowledges, with
  XACK; its list broker has none), run by ``taskiq.api.run_receiver_task`` at
  ``max_async_tasks=100``, the default of that function and of ``taskiq worker
  --max-async-tasks`` (taskiq/cli/worker/args.py).
- streaq 7.2: ``streaq.Worker``, ``concurrency=16`` (streaq/worker.py, ``Worker.__init__``;
  it talks to Redis through coredis, not redis-py).

Each enqueues its jobs first (untimed), then is timed from starting its worker until every
job has run and its queue holds no unacknowledged job (arq: the job left the queue's sorted
set; saq: the job left its ``incomplete`` set; taskiq: no entry pending in the stream's
consumer group; streaq: the entry was acked and deleted from the stream). Stopping is not
timed. Every key carries the run's prefix, so the run's cleanup removes it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import attrs
import redis
import redis.asyncio
from loads import LOADS, Load
from peers import DONE, TIMEOUT, isolated, job

from orizuru_py.ops.bench import message
from orizuru_py.ops.benchdata import Case, Limit, Result, Timer

_CHUNK = 1000  # jobs per enqueue batch, where a peer batches


@attrs.frozen
class _Run:
    """One peer set up for a measurement: what the driver calls, in this order."""

    enqueue: Callable[[int], Awaitable[None]]  # queue jobs 0..n-1 (untimed)
    work: Callable[[], Coroutine[Any, Any, Any]]  # run the worker until cancelled
    settled: Callable[[], Awaitable[bool]]  # no job left waiting or unacknowledged
    close: Callable[[], Awaitable[None]]  # release what setup took


def _given(name: str, value: int | None) -> dict[str, int]:
    """A concurrency option to pass, or none: the peer's default."""
    return {} if value is None else {name: value}


async def _arq(url: str, prefix: str, concurrency: int | None, load: Load) -> _Run:
    from arq import create_pool
    from arq.connections import RedisSettings
    from arq.worker import Worker, func

    queue = f"{prefix}-arq"
    settings = RedisSettings.from_dsn(url)
    pool = await create_pool(settings, default_queue_name=queue)

    async def noop(ctx: dict[str, Any], payload: Any) -> None:
        await load.arun(payload)
        job(payload)

    async def enqueue(n: int) -> None:
        # arq keeps a job's keys under its own fixed prefixes ("arq:job:<id>",
        # "arq:result:<id>"): ids that carry the run's prefix make them the run's to delete.
        # A fresh token per round: arq refuses an id whose result it still keeps (a day),
        # so the second round's jobs were never queued and the round hung.
        token = os.urandom(3).hex()
        for i in range(n):
            await pool.enqueue_job("noop", message(i), _job_id=f"{prefix}-arq-{token}-{i}")

    worker = Worker(
        [func(noop, name="noop")],
        queue_name=queue,
        redis_settings=settings,
        **_given("max_jobs", concurrency),
    )

    async def settled() -> bool:
        return not await pool.zcard(queue)

    async def close() -> None:
        await worker.close()
        await pool.aclose()

    return _Run(enqueue, worker.async_run, settled, close)


async def _saq(url: str, prefix: str, concurrency: int | None, load: Load) -> _Run:
    from saq import Worker
    from saq.queue.redis import RedisQueue

    # Each of saq's concurrent jobs holds a connection while it waits for work: past 100
    # (redis-py's default pool) it fails with "Too many connections", so the pool grows
    # with the concurrency, as a user running that many would make it.
    pool = max(100, 2 * (concurrency or 0) + 20)
    client = redis.asyncio.Redis.from_url(url, max_connections=pool)
    queue = RedisQueue(client, name=f"{prefix}-saq")
    await queue.connect()

    async def noop(ctx: Any, *, payload: Any) -> None:
        await load.arun(payload)
        job(payload)

    async def enqueue(n: int) -> None:
        for i in range(n):
            await queue.enqueue("noop", payload=message(i))

    worker = Worker(queue, functions=[("noop", noop)], **_given("concurrency", concurrency))

    # Asked on saq's own client at 500 or more jobs at once, the count of unfinished jobs
    # did not answer for minutes once the queue ran empty (its hundreds of dequeues
    # blocked on the same client): a client of our own asks instead.
    probe = redis.asyncio.Redis.from_url(url)

    async def settled() -> bool:
        return not await probe.zcard(queue.namespace("incomplete"))

    async def close() -> None:
        await probe.aclose()
        await queue.disconnect()

    # Cancelled, start() stops the worker itself (logging a warning: its blocked dequeues
    # do not end within the default grace period of 0 s).
    return _Run(enqueue, worker.start, settled, close)


async def _taskiq(url: str, prefix: str, concurrency: int | None, load: Load) -> _Run:
    from taskiq.api import run_receiver_task
    from taskiq_redis import RedisStreamBroker

    name = f"{prefix}-taskiq"
    broker = RedisStreamBroker(url, queue_name=name, consumer_group_name=name)

    @broker.task(task_name="noop")
    async def noop(payload: dict[str, str]) -> None:
        await load.arun(payload)
        job(payload)

    # The consumer group is created at the stream's end ("$") by startup(): it must exist
    # before the jobs are queued, or the worker never sees them.
    await broker.startup()

    async def enqueue(n: int) -> None:
        for i in range(n):
            await noop.kiq(message(i))

    # Asked on a client of our own, not on the broker's pool, which blocks while its tasks
    # hold every connection (as saq's did): once, at 100 tasks on a loaded machine, the
    # row did not end within 180 s, though alone it ends in seconds.
    client = redis.asyncio.Redis.from_url(url)

    async def settled() -> bool:
        return not (await client.xpending(name, name))["pending"]

    async def close() -> None:
        await client.aclose()
        await broker.shutdown()

    def work() -> Coroutine[Any, Any, None]:
        return run_receiver_task(broker, **_given("max_async_tasks", concurrency))

    return _Run(enqueue, work, settled, close)


async def _streaq(url: str, prefix: str, concurrency: int | None, load: Load) -> _Run:
    from streaq import Worker

    worker: Worker[None] = Worker(
        redis_url=url, queue_name=f"{prefix}-streaq", **_given("concurrency", concurrency)
    )
    # streaq loads its Lua as a function library, which lives outside every database:
    # remove it afterwards unless someone else had loaded it.
    r = redis.asyncio.Redis.from_url(url)
    ours = not await r.function_list(library="streaq")

    @worker.task(name="noop")
    async def noop(payload: Any) -> None:
        await load.arun(payload)
        job(payload)

    async def enqueue(n: int) -> None:
        async with worker:
            for lo in range(0, n, _CHUNK):
                tasks = [noop.enqueue(message(i)) for i in range(lo, min(lo + _CHUNK, n))]
                await worker.enqueue_many(tasks)

    async def settled() -> bool:
        return not await worker.queue_size()

    async def close() -> None:
        if ours:
            await r.function_delete("streaq")
        await r.aclose()

    return _Run(enqueue, worker.run_async, settled, close)


@attrs.frozen
class _Peer:
    """How to set a peer up, and the lowest server (INFO ``redis_version``) it runs on."""

    setup: Callable[[str, str, int | None, Load], Awaitable[_Run]]
    needs: tuple[int, int] = (0, 0)
    because: str = ""


_PEERS = {
    "arq": _Peer(_arq),
    "saq": _Peer(_saq),
    "taskiq": _Peer(_taskiq, (6, 2), "its stream broker reclaims with XAUTOCLAIM"),
    "streaq": _Peer(_streaq, (7, 0), "it loads its Lua with FUNCTION LOAD"),
}


async def _until(
    check: Callable[[], Awaitable[bool]], worker: asyncio.Task[Any], what: str
) -> None:
    """Poll ``check`` every 2 ms; raise when the worker has died or after ``TIMEOUT``."""
    deadline = time.monotonic() + TIMEOUT
    while not await check():
        if worker.done():
            raise RuntimeError(f"the worker stopped before {what}: {worker!r}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {TIMEOUT:.0f} s waiting for {what}")
        await asyncio.sleep(0.002)


async def _drive(run: _Run, r: redis.Redis, n: int) -> Result:
    """Queue ``n`` jobs, then time the worker until all ran and settled; stop it untimed."""

    async def ran() -> bool:
        return len(DONE) >= n

    worker: asyncio.Task[Any] | None = None
    try:
        await run.enqueue(n)
        with Timer(r) as t:
            worker = asyncio.create_task(run.work())
            await _until(ran, worker, f"{n} jobs ran")
            await _until(run.settled, worker, "every job was acknowledged")
    finally:
        if worker is not None:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        await run.close()
    if len(DONE) != n:
        raise RuntimeError(f"{n} jobs ran {len(DONE)} times")
    return t.result(n)


async def _measure(
    peer: str, url: str, prefix: str, n: int, concurrency: int | None, load: Load
) -> dict[str, Any]:
    spec = _PEERS[peer]
    r = redis.Redis.from_url(url)
    server = str(r.info("server")["redis_version"])
    if tuple(int(x) for x in server.split(".")[:2]) < spec.needs:
        need = ".".join(map(str, spec.needs))
        return {"skipped": f"needs Redis {need}+ ({spec.because}); server is {server}"}
    try:
        run = await spec.setup(url, prefix, concurrency, load)
    except ImportError as exc:
        return {"skipped": f"cannot import {peer}: {exc}"}
    return attrs.asdict(await _drive(run, r, n))


def measure(
    peer: str,
    url: str,
    prefix: str,
    messages: int,
    concurrency: int | None = None,
    load: str = "noop",
) -> dict[str, Any]:
    """Run one peer in this (fresh) interpreter at ``concurrency`` (default: the peer's
    own) with the job of ``load``: its ``Result`` as a dict, or ``{"skipped": reason}``
    where it cannot run here."""
    return asyncio.run(_measure(peer, url, prefix, messages, concurrency, LOADS[load]))


_PACKAGES = {"taskiq": "taskiq_redis"}  # what must be installed, where not the peer's name


def cases(arq: int, saq: int, taskiq: int, streaq: int) -> list[Case]:
    """The four asyncio peers with the no-op job at their default concurrency, sized in
    jobs."""
    return [
        Case("arq", "arq Worker, max_jobs 10", arq, isolated("arq", "peers_async")),
        Case("saq", "saq Worker, concurrency 10", saq, isolated("saq", "peers_async")),
        Case(
            "taskiq",
            "taskiq stream broker, 100 async tasks",
            taskiq,
            isolated("taskiq", "peers_async", _PACKAGES["taskiq"]),
        ),
        Case("streaq", "streaq Worker, concurrency 16", streaq, isolated("streaq", "peers_async")),
    ]


# What keeps a peer from the rate its concurrency allows, whatever the machine.
_CAPS = {
    "arq": "arq polls every 0.5 s for at most 5 x max_jobs jobs: <= {cap:,} jobs/s here",
}


def loaded_cases(tasks: int, load: Load, n: int, limit: Limit) -> list[Case]:
    """taskiq (stream broker), saq, arq and streaq at ``tasks`` concurrent jobs running
    ``load``'s awaited job."""
    out = []
    for peer in ("taskiq", "saq", "arq", "streaq"):
        note = _CAPS.get(peer, "").format(cap=10 * tasks)
        measure = isolated(
            peer, "peers_async", _PACKAGES.get(peer), concurrency=tasks, load=load.name
        )
        label = f"{peer} {tasks} tasks, {load.label}"
        out.append(Case(f"{peer}_{load.name}_a{tasks}", label, n, measure, limit=limit, note=note))
    return out
