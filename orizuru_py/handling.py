"""WorkerCore: everything a worker decides, shared by the blocking and the asyncio Worker.

Its loops are plans, like the queue's: besides Redis requests they await four of
the worker's own, which each Worker performs its way (threads and a condition, or
tasks and an asyncio condition):

- ``RunChunk``: run the handler on each guard of a chunk (a call, or an await);
- ``Until`` / ``Notify``: wait until the hand changes so, or tell the waiters it did;
- ``Via``: run a plan on a lane's consumer's own driver (its takes, with its lock).

So taking, starting, running, acking, retrying, dead-lettering, giving up and the
bookkeeping of the hand exist once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import attrs

from . import checks
from .backoff import Backoff, Exponential
from .chunks import Committed, Part, commit, release
from .client import TRANSIENT, Client
from .codecs import Codec
from .collector import CollectReport
from .consumer import DEFAULT_HEARTBEAT_TIMEOUT, ConsumerCore
from .control import Control, Wait, Wake
from .guard import GuardCore
from .held import Held
from .lanes import Lane, Lanes, Pace
from .limits import RateLimit, Throttle
from .observer import Observer
from .outage import Retrying
from .outcome import WorkerStats, judge
from .plan import Pause, Plan, Request
from .timelimit import Outcome

log = logging.getLogger("orizuru_py.worker")

T = TypeVar("T")
ACK_WITHIN = 0.005  # acks of a chunk still running go out after at most this long
ACKS_BEHIND = 10_000  # no fetch while this many acks wait for the control loop
DEFAULT_DRAIN_TIMEOUT = 30.0
DEFAULT_GC_INTERVAL = 5.0
# Unstarted messages a worker may keep at most; it keeps that many only while its handler
# is quick (a batch per round trip), a message or so beyond its threads when it is slow.
DEFAULT_PREFETCH = 1000


@attrs.frozen
class RunChunk(Request):
    """Run the handler on each guard in order. The reply: one (exception or None,
    seconds) per guard run; it ends early once ``ack_within`` seconds have passed (the
    plan settles what ran, checks the worker was not reaped meanwhile, and asks for the
    rest), whether the last run succeeded or failed, and after a run that raised
    ``RateLimited`` (the plan pauses before the rest, as the limiter says)."""

    queue: str
    guards: Sequence[GuardCore]
    ack_within: float


@attrs.frozen
class Until(Request):
    """Wait until ``ready()`` is true, checked whenever a ``Notify`` for its channel
    ``on`` comes: "room" (fetch loops wait for room in the hand), "work" (working loops
    wait for a chunk), "control" (the control loop waits for something to send)."""

    ready: Callable[[], bool]
    on: str


@attrs.frozen
class Notify(Request):
    """The hand changed: wake up to ``work`` working loops (a chunk each); with ``room``,
    every fetch loop (there is room, or a lane before theirs changed); with ``control``,
    the control loop (there is something to send)."""

    work: int = 0
    room: bool = False
    control: bool = False


@attrs.frozen
class Via(Request):
    """Run ``plan`` on ``consumer``'s own driver."""

    consumer: ConsumerCore[Any]
    plan: Plan[Any]


class WorkerCore:
    """A worker's lanes, its hand and its rules. The fronts give the classes of their API
    (``consumer_class``, ``gc_class``, ``driver_class``, which performs the requests
    above) and run the loops: a fetching loop per queue, ``concurrency`` working loops."""

    consumer_class: type[Any]
    gc_class: type[Any]
    driver_class: type[Any]

    def __init__(
        self,
        r: Client,
        queues: str | Sequence[str],
        handler: Callable[[Any], Any],
        *,
        concurrency: int = 8,
        max_attempts: int = checks.DEFAULT_MAX_ATTEMPTS,
        heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
        backoff: Backoff | None = None,
        prefetch: int | None = None,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
        gc_interval: float | None = DEFAULT_GC_INTERVAL,
        pass_guard: bool = False,
        codec: Codec | None = None,
        prefix: str = "orizuru",
        name: str | None = None,
        observer: Observer | None = None,
        rate_limit: RateLimit | None = None,
        time_limit: float | None = None,
    ) -> None:
        checks.function("handler", handler)
        self._check_handler(handler)
        checks.count("concurrency", concurrency, 1)
        checks.count("max_attempts", max_attempts, 1)
        prefetch = DEFAULT_PREFETCH if prefetch is None else checks.count("prefetch", prefetch, 0)
        if gc_interval is not None:
            checks.seconds(gc_interval, "gc_interval", positive=True)
        checks.seconds(drain_timeout, "drain_timeout")
        checks.instance("rate_limit", rate_limit, RateLimit)
        if time_limit is not None:
            time_limit = checks.seconds(time_limit, "time_limit", positive=True, most=86_400)
        self.queues = checks.queues(queues)
        self.handler = handler
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.backoff: Backoff = backoff or Exponential()
        self.drain_timeout = drain_timeout
        self.pass_guard = pass_guard
        self.observer = observer
        self.rate_limit = rate_limit
        self.throttle = Throttle()  # the queue's own limiter said wait
        self.time_limit = time_limit
        self.stats = WorkerStats()
        self.gc_interval = gc_interval
        self.pace = Pace(concurrency, prefetch, direct=rate_limit is None)
        token = os.urandom(3).hex()  # one id across the worker's queues
        options = dict(name=name, heartbeat_timeout=heartbeat_timeout, max_attempts=max_attempts,
                       codec=codec, prefix=prefix, prefetch=True, token=token)  # fmt: skip
        consumers = [self.consumer_class(r, queue, **options) for queue in self.queues]
        self.lanes = Lanes([Lane(c) for c in consumers], self.pace)
        self.gcs = [
            self.gc_class(
                r,
                queue,
                max_attempts=max_attempts,
                prefix=prefix,
                on_report=partial(self._recovered, queue),
            )
            for queue in self.queues
        ]
        self.control = Control()
        self._driver = self.driver_class(r, self)
        self.stopping = self.aborted = False
        self.crash: BaseException | None = None
        self._timings: dict[GuardCore, float] = {}  # handler seconds, kept for an observer
        # The hand is changed by several threads (one event loop's tasks never contend):
        # every change, never a wait or a request, holds this lock.
        self._hand = threading.Lock()
        self._started = False

    def _check_handler(self, handler: Callable[..., Any]) -> None:
        """Refuse a handler of the other API (the fronts say which)."""

    @property
    def consumers(self) -> list[Any]:
        return [lane.consumer for lane in self.lanes.lanes]

    @property
    def consumer(self) -> Any:
        """The consumer of the first queue."""
        return self.consumers[0]

    def _begin(self) -> None:
        if self._started:
            raise RuntimeError("a Worker runs once; make a new one")
        self._started = True
        self.stats.started_at = time.monotonic()
        log.info("worker %s on %s: %d at once", self.consumer.id, ", ".join(self.queues),
                 self.concurrency)  # fmt: skip

    def _stopped(self) -> None:
        log.info("worker %s stopped: %s", self.consumer.id, self.stats.summary())

    def _died(self, exc: BaseException) -> None:
        """A thread (task) of ours died: stop at once, loudly, so the GC recovers our
        messages, never a live-looking worker that does nothing."""
        if self.crash is None:
            self.crash = exc
            log.critical("worker %s: a thread died, stopping at once", self.consumer.id,
                         exc_info=exc)  # fmt: skip

    # -- the loops ------------------------------------------------------------------------

    async def _fetching(self, lane: Lane) -> None:
        """A lane's fetch loop: take while there is room and every lane before it is
        empty; when its queue is empty, block on it, so a push starts at once."""
        lanes, consumer = self.lanes, lane.consumer
        while True:
            await Until(lambda: self.stopping or self._may_fetch(lane), "room")
            if self.stopping:
                return
            with self._hand:
                room = lanes.room(lane)
            direct = self.pace.started_ahead(room) and self.throttle.left() <= 0
            started = time.perf_counter()
            guards = await self._fetch(lane, room, 0, direct)
            if len(guards) == room:  # the queue had enough: a fetch, not a wait
                self.pace.fetched(time.perf_counter() - started)
            with self._hand:
                wake = lanes.add(lane, guards, room)  # short: the lanes below may fetch now
            await Notify(wake, room=True)
            if not guards:
                guards = await self._fetch(lane, room, consumer.block, False)
                with self._hand:
                    wake = lanes.add(lane, guards, room)
                await Notify(wake, room=True)

    def _may_fetch(self, lane: Lane) -> bool:
        """The lane may fetch (see ``Lanes.may_fetch``) and the acks have kept up: a
        control loop behind handlers that outrun it does not let the processing list
        grow without bound (what a death of this worker would run twice)."""
        return self.control.acking < ACKS_BEHIND and self.lanes.may_fetch(lane)

    async def _fetch(self, lane: Lane, room: int, timeout: float, direct: bool) -> list[GuardCore]:
        """One take of up to ``room`` on the lane's consumer (its driver, its lock);
        ``[]`` after a pause when the server is unreachable (the consumer logs it)."""
        consumer = lane.consumer
        try:
            guards: list[GuardCore] = await Via(
                consumer, consumer._next_batch(room, timeout, started=direct)
            )
        except TRANSIENT:
            await Pause(consumer.retrying.pause())
            return []
        return guards

    async def _working(self) -> None:
        """One thread's (task's) loop: take the next chunk, have it started (the control
        loop sends the starts of every loop together), run the handler on it, leave its
        acks for the control loop, and again."""
        lanes, control = self.lanes, self.control
        while True:
            await Until(lambda: self.stopping or lanes.ready(), "work")
            with self._hand:
                chunk = None if self.stopping else lanes.next_chunk()
                self.stats.in_flight = lanes.running
            if chunk is None:
                if self.stopping:
                    return
                continue  # another loop took it first
            lane, guards, began = chunk
            if not began:  # else taken straight into the processing list: started already
                if self.throttle.left() > 0:
                    await self._paused()
                ticket = control.start(lane, guards)
                await Notify(control=True)
                await Wait(ticket)
                guards = ticket.started
            await self._handle(lane, guards)
            with self._hand:
                lanes.done(len(chunk[1]))
                self.stats.in_flight = lanes.running
            await Notify(room=True)

    async def _handle(self, lane: Lane, guards: list[GuardCore]) -> None:
        """Run the handler on a started chunk and leave the acks of what succeeded for the
        control loop: as the chunk runs, when it runs long, not only at its end."""
        begun = time.perf_counter()
        # A chunk comes back to the plan between handlers: after ACK_WITHIN when it runs long
        # (its acks go out), and in any case within a quarter of the heartbeat timeout (a
        # handler that blocked everything may have outlived this worker's registration).
        long = self.pace.per_message * len(guards) > ACK_WITHIN
        within = ACK_WITHIN if long else lane.consumer.heartbeat_timeout / 4
        rest = lane.unfenced(guards)
        while rest:
            if self.throttle.left() > 0:  # a chunk taken started, or after a RateLimited
                await self._paused()
            outcomes: list[Outcome] = await RunChunk(lane.queue, rest, within)
            done: list[GuardCore] = []
            for guard, (exc, seconds) in zip(rest, outcomes, strict=False):
                if exc is not None:
                    await self._failed(lane, guard, exc)
                elif guard.settled:  # the handler settled it itself (pass_guard): handled
                    self._handled_itself(guard, seconds)
                else:
                    done.append(guard)
                    if self.observer is not None:
                        self._timings[guard] = seconds
            rest = lane.unfenced(rest[len(outcomes) :])  # a long run may have outlived us
            if done:
                self.control.ack(lane, done)
                await Notify(control=True)
        self.pace.handled(time.perf_counter() - begun, len(guards))

    async def _paused(self) -> None:
        """Sleep while the queue's own limiter, or a handler's ``RateLimited`` without a
        limiter, says this worker may start nothing."""
        while self.throttle.left() > 0 and not self.stopping:
            await Pause(min(self.throttle.left(), 0.2))

    async def _controlling(self) -> None:
        """The control loop: send what the loops left (acks, chunks to start) in one round
        trip, wake the loops whose chunks it started, and again; until the front closes
        the control and nothing is left."""
        control = self.control
        while True:
            await Until(lambda: control.pending() or control.closed, "control")
            acks, tickets = control.take()
            if not acks and not tickets:
                return
            lanes = list(dict.fromkeys([*acks, *(t.lane for t in tickets)]))
            parts = [
                Part(lane.consumer.held, acks.get(lane, []),
                     [g for t in tickets if t.lane is lane for g in t.chunk], self.rate_limit)
                for lane in lanes
            ]  # fmt: skip
            started: Committed | None = await self._settling(
                "ack and start", partial(commit, parts), partial(_give_up, parts)
            )
            if started is not None and started.wait:
                self.throttle.hold(started.wait)
            running = {id(g) for part in (started.started if started else ()) for g in part}
            for ticket in tickets:
                ticket.started = [g for g in ticket.chunk if id(g) in running]
            await Wake(tuple(tickets))
            if started is not None:
                self._acked([g for lane in acks for g in acks[lane]])
            if acks:
                control.sent(sum(map(len, acks.values())))
                await Notify(room=True)  # a fetch loop may wait for the acks to keep up

    def _acked(self, guards: list[GuardCore]) -> None:
        self.stats.handled += len(guards)
        observer = self.observer
        if observer is not None:
            timings = self._timings
            for g in guards:
                observer.acked(g.queue, g.id, timings.pop(g, 0.0))

    def _handled_itself(self, guard: GuardCore, seconds: float) -> None:
        self.stats.handled += 1
        if self.observer is not None:
            self.observer.acked(guard.queue, guard.id, seconds)

    async def _failed(self, lane: Lane, guard: GuardCore, exc: BaseException) -> None:
        failure = judge(guard, exc, self.max_attempts, self.backoff, self.rate_limit)
        if failure is None or failure.limiter is None:
            self.stats.failed += 1
        if failure is None:
            return
        if failure.limiter is not None:  # RateLimited: back later, no attempt counted
            self.stats.rate_limited += 1
            if not failure.limiter:
                self.throttle.hold(failure.delay or 0.0)
            settle = partial(guard._throttled, failure.delay or 0.0, failure.limiter)
        elif failure.delay is None:
            self.stats.dead_lettered += 1
            settle = partial(guard._dead_letter, failure.reason)
        else:
            self.stats.retried += 1
            settle = partial(guard._retry, failure.delay)
        part = [Part(lane.consumer.held, done=[guard])]
        await self._settling("settle", lambda again: settle(), partial(_give_up, part))
        if self.observer is not None and failure.limiter is None:
            self.observer.failed(guard.queue, guard.id, guard.attempts, exc, failure.delay)
            if failure.delay is None:
                self.observer.dead_lettered(guard.queue, guard.id, failure.reason)

    def _recovered(self, queue: str, report: CollectReport) -> None:
        if report and self.observer is not None:
            self.observer.recovered(queue, report)

    async def _settling(
        self, what: str, step: Callable[[bool], Plan[T]], giving_up: Callable[[], int]
    ) -> T | None:
        """Run a settling step, retrying connection errors with backoff until it succeeds,
        the worker is aborted, or the drain time after a stop runs out. Messages of a step
        given up on (``giving_up`` says how many) stay in Redis, and their consumer hands
        them back. ``step`` gets whether it is sent again (its first sending may have been
        applied)."""
        retrying, give_up = None, None
        while True:
            try:
                result = await step(retrying is not None)
            except TRANSIENT as exc:
                if self.stopping and give_up is None:
                    give_up = time.monotonic() + self.drain_timeout
                if self.aborted or (give_up is not None and time.monotonic() > give_up):
                    log.error("gave up trying to %s %d message(s): %s", what, giving_up(), exc)
                    return None
                retrying = retrying or Retrying(self.consumer.r, f"worker trying to {what}")
                await Pause(retrying.failed(exc))
            else:
                if retrying is not None:
                    retrying.ok()
                return result

    async def _hand_back(self) -> None:
        """The fetching has stopped: hand every message no thread began back, uncounted."""
        with self._hand:
            began = self.lanes.unstarted()
        for lane in self.lanes.lanes:
            held, started = lane.consumer.held, began[lane]
            step = _releasing(held, started)
            await self._settling("hand back unstarted", step, partial(_give_up, [Part(held)]))
        await Notify(self.concurrency, room=True)

    @staticmethod
    def _undeliverable(result: Any) -> None:
        """A blocking handler returned an awaitable: close it, never ack it."""
        getattr(result, "close", lambda: None)()
        raise TypeError(
            "the handler returned an awaitable, which this Worker cannot run; "
            "use orizuru_py.asyncio.Worker"
        )


def _releasing(held: Held, started: list[GuardCore]) -> Callable[[bool], Plan[int]]:
    """The step handing a lane's unstarted messages back (the same when sent again)."""
    return lambda _again: release(held, started)


def _give_up(parts: Sequence[Part]) -> int:
    """Leave the messages of ``parts`` to their consumers' next reconcile (acks' as seen
    by the application, starts' as not); returns how many."""
    for part in parts:
        part.held.abandon([g.raw for g in part.done], seen=True)
        part.held.abandon([g.raw for g in part.chunk])
    return sum(len(part.done) + len(part.chunk) for part in parts)
