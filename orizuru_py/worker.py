"""Worker: a thread pool that runs a function on every message of one or more queues.

Each queue (in priority order) has its own consumer, fetch thread and garbage
collector; ``concurrency`` threads run the handler. What they decide (how many
messages to hold, which queue first, chunks, acks, retries, dead letters, giving
up) is ``WorkerCore``'s, shared with the asyncio Worker; this module only runs it
on threads.

A fetch thread takes batches into its consumer's prefetch list while there is
room, and only while every queue before it is empty; when its queue is empty it
blocks there, so a message pushed to any queue starts at once. A free thread
takes the next chunk of unstarted messages (one message when the handler is
slow, a batch when it is quick), starts it (one step moves it to the processing
list: from then on a death counts it), runs the handler, and acks what
succeeded together with starting its next chunk, in one round trip. A handler
that raises (any exception, SystemExit included) is retried after a backoff, and
dead-lettered with the exception's text once the message has been delivered
``max_attempts`` times.

Stopping (``stop()``, or SIGINT/SIGTERM when ``run()`` is on the main thread):
take nothing more, hand unstarted messages back uncounted, let in-flight handlers
finish within ``drain_timeout`` and ack them, deregister. A second signal stops
at once: what is in flight stays, and the GC returns it once this worker's
deadline passes. A thread of ours that dies stops the worker the same way and
``run()`` raises ``WorkerCrashed``: never a live-looking worker that does nothing.
"""

from __future__ import annotations

import inspect
import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from . import tracing
from .checks import is_async
from .client import TRANSIENT, Commands
from .collector import GarbageCollector
from .consumer import Consumer
from .control import Ticket, Wait, Wake
from .errors import RateLimited, WorkerCrashed
from .handling import (
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_GC_INTERVAL,
    Notify,
    RunChunk,
    Until,
    Via,
    WorkerCore,
)
from .plan import Driver, Plan, PlanMoved
from .timelimit import Outcome, Watched

__all__ = ["DEFAULT_DRAIN_TIMEOUT", "DEFAULT_GC_INTERVAL", "Worker"]

log = logging.getLogger("orizuru_py.worker")


class WorkerDriver(Driver):
    """Performs a worker's plans on threads: Redis requests as any driver, its own
    requests with a condition per channel (fetch loops wait for room, working loops for
    work, the control loop for something to send) and an event per ticket."""

    def __init__(self, r: Commands, core: WorkerCore) -> None:
        super().__init__(r)
        self.core = core
        self.mutex = threading.Lock()
        self.channels = {on: threading.Condition(self.mutex) for on in ("room", "work", "control")}
        self.watched: dict[int, Watched] = {}  # working thread ident -> its plan and handler

    def _perform(self, op: Any) -> Any:
        kind = type(op)
        if kind is RunChunk:
            return self._run_chunk(op)
        if kind is Until:
            with self.mutex:
                self.channels[op.on].wait_for(op.ready)
            return None
        if kind is Notify:
            with self.mutex:
                if op.work:
                    self.channels["work"].notify(op.work)
                if op.room:
                    self.channels["room"].notify_all()
                if op.control:
                    self.channels["control"].notify()
            return None
        if kind is Wait:
            return self._wait(op.ticket)
        if kind is Wake:
            with self.mutex:
                for ticket in op.tickets:
                    ticket.done = True
                    if ticket.waiter is not None:
                        ticket.waiter.set()
            return None
        if kind is Via:
            return op.consumer._driver.run(op.plan)
        return super()._perform(op)

    def _wait(self, ticket: Ticket) -> None:
        with self.mutex:
            if ticket.done:
                return
            ticket.waiter = threading.Event()
        ticket.waiter.wait()

    def _run_chunk(self, op: RunChunk) -> list[Outcome]:
        core, clock = self.core, time.perf_counter
        handler, pass_guard, observer = core.handler, core.pass_guard, core.observer
        watched = self.watched.get(threading.get_ident()) if core.time_limit else None
        hook = tracing.hook  # None unless orizuru_py.otel.instrument() ran
        out: list[Outcome] = []
        begun = clock()
        for guard in op.guards:
            if observer is not None:
                observer.started(op.queue, guard.id)
            t0 = clock()
            if watched is not None:
                watched.begin(guard, out, t0)
            try:
                if hook is None:
                    result = handler(guard if pass_guard else guard.payload)
                else:
                    result = hook.process(handler, guard, pass_guard)
                if result is not None and inspect.isawaitable(result):
                    core._undeliverable(result)
                error = None
            except BaseException as exc:  # SystemExit and CancelledError too: a failed attempt
                error = exc
            now = clock()
            if watched is not None:
                watched.end()  # PlanMoved if abandoned meanwhile: the late result is dropped
            out.append((error, now - t0))
            if now - begun > op.ack_within or isinstance(error, RateLimited):
                break
        return out

    def wake_all(self) -> None:
        with self.mutex:
            for channel in self.channels.values():
                channel.notify_all()


class Worker(WorkerCore):
    """Runs ``handler(payload)`` (or ``handler(guard)`` with ``pass_guard=True``) in
    ``concurrency`` threads on every message of ``queues`` (a name, or names in
    priority order)."""

    consumer_class = Consumer
    gc_class = GarbageCollector
    driver_class = WorkerDriver
    _driver: WorkerDriver

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._workers: list[threading.Thread] = []  # the working threads now
        self.abandoned: list[threading.Thread] = []  # still in a handler past its time limit
        # ``orizuru worker --processes``: a stuck handler stops this process (its supervisor
        # starts a fresh one) instead of leaving a thread behind for the process's life.
        self.stop_when_stuck = False

    def _check_handler(self, handler: Callable[..., Any]) -> None:
        if is_async(handler):
            raise TypeError(
                f"handler {handler!r} is a coroutine function: this Worker runs blocking "
                "functions in threads; use orizuru_py.asyncio.Worker for async handlers"
            )

    def stop(self) -> None:
        """Stop gracefully; ``run()`` returns once in-flight messages are settled. Any thread."""
        self.stopping = True
        self._driver.wake_all()

    def abort(self) -> None:
        """Stop at once, leaving in-flight messages for the GC (the second signal)."""
        self.aborted = True
        self._driver.closed.set()
        self.stop()

    def run(self) -> None:
        """Process messages until stopped. Blocks; works from any thread."""
        self._begin()
        restore = self._install_signals()
        try:
            self._run()
        finally:
            restore()
        if self.crash is not None:
            raise WorkerCrashed(f"worker stopped: a thread died: {self.crash!r}") from self.crash

    def _run(self) -> None:
        fetchers = [self._thread(self._fetching(lane), f"fetch-{lane.queue}")
                    for lane in self.lanes.lanes]  # fmt: skip
        workers = self._workers
        workers += [self._thread(self._working(), f"worker-{i}", watch=True)
                    for i in range(self.concurrency)]  # fmt: skip
        control = self._thread(self._controlling(), "control")
        gcs = [gc.start(self.gc_interval) for gc in self.gcs] if self.gc_interval else []
        watching = threading.Event()
        if self.time_limit is not None:
            threading.Thread(target=self._watch, args=(self.time_limit, watching),
                             name="orizuru-watchdog", daemon=True).start()  # fmt: skip
        try:
            while not self.stopping:
                time.sleep(0.2)
                alive = all(t.is_alive() for t in (*fetchers, *workers, control, *gcs))
                if not alive and not self.stopping:
                    self._died(RuntimeError("a worker thread ended unexpectedly"))
                    self.abort()
        finally:
            for gc in self.gcs:
                gc.stop()
            if not self._drain(fetchers, workers, control):
                for consumer in self.consumers:
                    consumer.stop_heartbeat()
                log.warning("worker %s stopped at once; the GC will return its in-flight "
                            "messages", self.consumer.id)  # fmt: skip
            watching.set()
            self._stopped()

    def _thread(
        self, plan: Plan[None], name: str, reply: Any = None, watch: bool = False
    ) -> threading.Thread:
        """A thread running ``plan`` (resuming it with ``reply``); ``watch``: a working
        thread, whose handler runs are watched for the time limit."""
        watched = self._driver.watched

        def guarded() -> None:
            me = threading.get_ident()
            if watch:
                watched[me] = Watched(plan)
            try:
                self._driver.run(plan, reply)
            except PlanMoved:  # abandoned past the time limit; another thread has its plan
                log.info("an abandoned handler returned at last; its result is ignored")
            except BaseException as exc:  # a bug of ours, or the interpreter shutting down
                self._died(exc)
                self.abort()
            finally:
                watched.pop(me, None)

        thread = threading.Thread(target=guarded, name=f"orizuru-{name}", daemon=True)
        thread.start()
        return thread

    def _watch(self, limit: float, done: threading.Event) -> None:
        """The watchdog: a working thread whose handler runs past ``limit`` is abandoned,
        and a fresh thread goes on with its plan (see timelimit.py)."""
        while not done.wait(min(0.1, limit / 4)):
            now = time.perf_counter()
            for ident, watched in list(self._driver.watched.items()):
                answer = watched.overdue(now, limit)
                if answer is None:
                    continue
                del self._driver.watched[ident]
                stuck = next(t for t in self._workers if t.ident == ident)
                self.abandoned.append(stuck)
                self.abandoned = [t for t in self.abandoned if t.is_alive()]
                log.error(
                    "worker %s: a handler ran past its time limit of %g s (message %s); its "
                    "thread is abandoned and replaced (%d abandoned still running)",
                    self.consumer.id, limit, watched.guard.id if watched.guard else "?",
                    len(self.abandoned),
                )  # fmt: skip
                fresh = self._thread(
                    watched.plan, stuck.name[len("orizuru-") :], answer, watch=True
                )
                self._workers[self._workers.index(stuck)] = fresh
                if self.stop_when_stuck:
                    self.stop()

    def _drain(
        self,
        fetchers: list[threading.Thread],
        workers: list[threading.Thread],
        control: threading.Thread,
    ) -> bool:
        """Hand back unstarted messages, let in-flight ones finish and their acks go,
        deregister. False when aborted on the way (in-flight messages are left for the GC)."""
        end = time.monotonic() + self.drain_timeout
        if self.aborted or not self._join(fetchers, end):
            return False
        self._driver.run(self._hand_back())
        if not self._join(workers, end):
            return False
        self.control.closed = True
        self._driver.wake_all()
        if not self._join([control], end):
            return False
        closed = True
        for consumer in self.consumers:
            try:
                consumer.close()
            except TRANSIENT as exc:
                log.warning("worker %s could not deregister from queue %s (%s); the GC "
                            "returns what it still holds once its deadline passes",
                            consumer.id, consumer.queue, exc)  # fmt: skip
                closed = False
        return closed

    def _join(self, threads: list[threading.Thread], end: float) -> bool:
        """Wait for ``threads`` (a list the watchdog may change) until ``end``; False as
        soon as the worker is aborted."""
        while time.monotonic() < end and not self.aborted:
            alive = [t for t in threads if t.is_alive()]
            if not alive:
                break
            alive[0].join(0.05)
        return not self.aborted and not any(t.is_alive() for t in threads)

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if self.stopping:
                log.warning("second signal: stopping at once")
                self.abort()
            else:
                log.info("signal %d: stopping after in-flight messages", signum)
                self.stop()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for s, h in previous.items():
                signal.signal(s, h)

        return restore
