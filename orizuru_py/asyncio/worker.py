"""Worker for asyncio: runs a coroutine handler on every message of one or more queues,
at most ``concurrency`` at once.

Everything it decides is ``WorkerCore``'s (orizuru_py.handling), shared with the
blocking Worker: lanes and strict priority, chunks started in one step, prompt acks,
backoff retries, dead letters, poison messages, giving up, handing back at stop.
This module performs its requests with tasks: a fetch task per queue,
``concurrency`` working tasks, a GC task per queue.

Stopping (``stop()``, or SIGINT/SIGTERM when ``run()`` is awaited in the main thread):
take nothing more, hand unstarted messages back uncounted, let running handlers finish
within ``drain_timeout`` and ack them, deregister. A second signal stops at once: the
running handlers are cancelled and what they held waits for the GC. A task of ours
that dies stops the worker at once and ``run()`` raises ``WorkerCrashed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from .. import tracing
from ..checks import is_async
from ..client import TRANSIENT, Commands
from ..control import Wait, Wake
from ..errors import RateLimited, WorkerCrashed
from ..handling import Notify, RunChunk, Until, Via, WorkerCore
from ..plan import Plan
from ..timelimit import Outcome, within
from .collector import GarbageCollector
from .consumer import Consumer
from .driver import AsyncDriver

log = logging.getLogger("orizuru_py.worker")
ABORT_WAIT = 10.0  # seconds an aborting worker waits for its cancelled tasks to end


class AsyncWorkerDriver(AsyncDriver):
    """Performs a worker's plans on tasks: Redis requests as any asyncio driver, its own
    requests with a condition per channel on one lock (fetch loops wait for room,
    working loops for work, the control loop for something to send) and a future per
    ticket."""

    def __init__(self, r: Commands, core: WorkerCore) -> None:
        super().__init__(r)
        self.core = core
        mutex = asyncio.Lock()
        self.channels = {on: asyncio.Condition(mutex) for on in ("room", "work", "control")}
        # At most this many of its tasks talk to Redis at once, so they never take every
        # connection of the client's pool (redis-py's holds 100): room is left for each
        # queue's blocking take, heartbeat and GC.
        pool = getattr(r, "connection_pool", None)
        size = getattr(pool, "max_connections", None) or 100
        self.gate = asyncio.Semaphore(max(1, min(size, 2**16) - 3 * len(core.queues) - 2))

    async def _perform(self, op: Any) -> Any:
        kind = type(op)
        if kind is RunChunk:
            return await self._run_chunk(op)
        if kind is Until:
            if op.ready():  # no lock to take when there is nothing to wait for
                return None
            condition = self.channels[op.on]
            async with condition:
                await condition.wait_for(op.ready)
            return None
        if kind is Notify:
            channels = self.channels
            async with channels["room"]:  # one lock for every channel
                if op.work:
                    channels["work"].notify(op.work)
                if op.room:
                    channels["room"].notify_all()
                if op.control:
                    channels["control"].notify()
            return None
        if kind is Wait:
            ticket = op.ticket
            if not ticket.done:
                ticket.waiter = asyncio.get_running_loop().create_future()
                await ticket.waiter
            return None
        if kind is Wake:
            for ticket in op.tickets:
                ticket.done = True
                if ticket.waiter is not None and not ticket.waiter.done():
                    ticket.waiter.set_result(None)
            return None
        if kind is Via:
            return await op.consumer._driver.run(op.plan)
        async with self.gate:
            return await super()._perform(op)

    async def _run_chunk(self, op: RunChunk) -> list[Outcome]:
        core, clock = self.core, time.perf_counter
        handler, pass_guard, observer = core.handler, core.pass_guard, core.observer
        me, limit = asyncio.current_task(), core.time_limit
        hook = tracing.hook  # None unless orizuru_py.otel.instrument() ran
        out: list[Outcome] = []
        begun = clock()
        for guard in op.guards:
            if observer is not None:
                observer.started(op.queue, guard.id)
            t0 = clock()
            try:
                if hook is None:
                    call = handler(guard if pass_guard else guard.payload)
                else:
                    call = hook.process_async(handler, guard, pass_guard)
                await (call if limit is None else within(call, limit))
                error = None
            except BaseException as exc:  # a failed attempt; unless the worker is cancelling us
                if me is not None and me.cancelling():
                    if core.aborted:
                        raise
                    me.uncancel()  # the handler cancelled its own task: its failure alone
                error = exc
            now = clock()
            out.append((error, now - t0))
            if now - begun > op.ack_within or isinstance(error, RateLimited):
                break
        return out

    async def wake_all(self) -> None:
        async with self.channels["room"]:
            for channel in self.channels.values():
                channel.notify_all()


class Worker(WorkerCore):
    """Awaits ``handler(payload)`` (or ``handler(guard)`` with ``pass_guard=True``) on
    every message of ``queues`` (a name, or names in priority order), at most
    ``concurrency`` at once."""

    consumer_class = Consumer
    gc_class = GarbageCollector
    driver_class = AsyncWorkerDriver
    _driver: AsyncWorkerDriver

    def __init__(self, *args: Any, concurrency: int = 100, **kwargs: Any) -> None:
        super().__init__(*args, concurrency=concurrency, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._halt: asyncio.Event | None = None

    def _check_handler(self, handler: Callable[..., Any]) -> None:
        if not is_async(handler):
            raise TypeError(
                f"handler {handler!r} is not a coroutine function: this Worker awaits async "
                "handlers; use orizuru_py.Worker to run blocking functions in threads"
            )

    def stop(self) -> None:
        """Stop gracefully; ``run()`` returns once running handlers are settled. From the
        worker's loop, another task, or another thread."""
        self.stopping = True
        self._call(self._wake)

    def abort(self) -> None:
        """Stop at once: running handlers are cancelled, the GC returns their messages."""
        self.aborted = True
        self._call(self._driver.closed.set)
        self.stop()

    def _call(self, action: Callable[[], Any]) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            action()
        else:
            loop.call_soon_threadsafe(action)

    def _wake(self) -> None:
        assert self._halt is not None
        self._halt.set()
        asyncio.get_running_loop().create_task(self._driver.wake_all())

    async def run(self) -> None:
        """Process messages until stopped."""
        self._begin()
        self._loop = asyncio.get_running_loop()
        self._halt = asyncio.Event()
        if self.stopping:  # stop() came before run(): nothing to wake yet, end at once
            self._halt.set()
        restore = self._install_signals()
        try:
            await self._run()
        finally:
            restore()
        if self.crash is not None:
            raise WorkerCrashed(f"worker stopped: a task died: {self.crash!r}") from self.crash

    async def _run(self) -> None:
        assert self._halt is not None
        fetchers = [self._task(self._fetching(lane), f"fetch-{lane.queue}")
                    for lane in self.lanes.lanes]  # fmt: skip
        workers = [self._task(self._working(), f"worker-{i}") for i in range(self.concurrency)]
        control = self._task(self._controlling(), "control")
        gcs = [gc.start(self.gc_interval) for gc in self.gcs] if self.gc_interval else []
        try:
            await self._halt.wait()
        except asyncio.CancelledError:
            # Cancelled (a TaskGroup, asyncio.timeout, a lifespan): stop as stop() does,
            # draining below, then end cancelled. A second cancel aborts the drain.
            self.stopping = True
            self._wake()
            raise
        finally:
            for gc in self.gcs:
                gc.stop()
            cancelled = False
            try:
                drained = await self._drain(fetchers, workers, control)
            except asyncio.CancelledError:  # cancelled while draining: stop at once
                self.aborted = cancelled = True
                drained = False
            if not drained:
                # A task whose cancellation the client lost (redis-py can, awaiting a reply
                # under a socket timeout) still ends: every loop's wait now says stop.
                self.control.closed = True
                tasks = (*fetchers, *workers, control)
                for task in tasks:
                    task.cancel()
                await self._driver.wake_all()
                _, left = await asyncio.wait(tasks, timeout=ABORT_WAIT)
                if left:
                    log.error("worker %s: %d task(s) did not end within %g s of being "
                              "cancelled; left behind", self.consumer.id, len(left),
                              ABORT_WAIT)  # fmt: skip
                for consumer in self.consumers:
                    await consumer.stop_heartbeat()
                log.warning("worker %s stopped at once; the GC will return its in-flight "
                            "messages", self.consumer.id)  # fmt: skip
            await asyncio.gather(*gcs, return_exceptions=True)
            self._stopped()
            if cancelled:
                raise asyncio.CancelledError

    def _task(self, plan: Plan[None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(
            self._driver.run(plan), name=f"orizuru-{name}"
        )
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[None]) -> None:
        """A fetch or working task ended: fine when stopping, else it died."""
        if task.cancelled():
            if self.stopping or self.aborted:
                return
            self._died(asyncio.CancelledError("a worker task was cancelled"))
            self.abort()
            return
        if self.stopping and task.exception() is None:
            return
        self._died(task.exception() or RuntimeError("a worker task ended unexpectedly"))
        self.abort()

    async def _drain(
        self,
        fetchers: list[asyncio.Task[None]],
        workers: list[asyncio.Task[None]],
        control: asyncio.Task[None],
    ) -> bool:
        """Hand back unstarted messages, let running ones finish and their acks go,
        deregister. False when aborted on the way (running handlers are left for the GC)."""
        end = time.monotonic() + self.drain_timeout
        if self.aborted or not await self._join(fetchers, end):
            return False
        await self._driver.run(self._hand_back())
        if not await self._join(workers, end):
            return False
        self.control.closed = True
        await self._driver.wake_all()
        if not await self._join([control], end):
            return False
        closed = True
        for consumer in self.consumers:
            try:
                await consumer.close()
            except TRANSIENT as exc:
                log.warning("worker %s could not deregister from queue %s (%s); the GC "
                            "returns what it still holds once its deadline passes",
                            consumer.id, consumer.queue, exc)  # fmt: skip
                closed = False
        return closed

    async def _join(self, tasks: list[asyncio.Task[None]], end: float) -> bool:
        """Wait for ``tasks`` until ``end``; False as soon as the worker is aborted."""
        while not self.aborted and any(not t.done() for t in tasks):
            left = end - time.monotonic()
            if left <= 0:
                return False
            await asyncio.wait(tasks, timeout=min(left, 0.05))
        return not self.aborted

    def _install_signals(self) -> Callable[[], None]:
        """SIGINT/SIGTERM stop the worker, unless this is not the main thread or the
        process already handles SIGTERM (uvicorn does): that owner calls ``stop()``.
        (SIGINT alone says nothing: ``asyncio.run`` handles it in every program.)"""
        if threading.current_thread() is not threading.main_thread() or callable(
            signal.getsignal(signal.SIGTERM)
        ):
            return lambda: None
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if self.stopping:
                log.warning("second signal: stopping at once")
                self.abort()
            else:
                log.info("signal %d: stopping after running handlers", signum)
                self.stop()

        for s in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(s, on_signal, s)

        def restore() -> None:
            for s in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(s)

        return restore
