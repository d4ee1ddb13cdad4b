"""What a worker holds: its lanes (one per queue, in priority order, each a deque of
taken, unstarted guards) and the pace that sizes its hand and its chunks. Shared by
the blocking and the asyncio Worker.

A free thread (or task) takes a chunk from the first lane that has any, unless a lane
before it may still find more in its queue; a lane may fetch only while every lane
before it found its queue empty. So a free thread always gets a message of the first
non-empty queue.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import Any

from .checks import MAX_BATCH
from .consumer import ConsumerCore
from .guard import GuardCore

log = logging.getLogger("orizuru_py.worker")

CHUNK_SECONDS = 0.001  # a chunk should take about this long (one round trip per chunk)
LONG_RUN = 50  # a thread frees this many fetches apart: keep no message ahead (Pace.ahead)


class Pace:
    """Running costs of one handler call and of one fetch, which size the worker's hand
    and its chunks. Unknown at first: the handler is assumed slow."""

    def __init__(self, concurrency: int, prefetch: int, direct: bool = True) -> None:
        self.concurrency = concurrency
        self.prefetch = max(0, min(prefetch, MAX_BATCH - concurrency))
        self.direct = direct  # takes may start what they bring (no rate limit to pass)
        self.per_message = 1.0
        self.per_fetch = 0.001

    def fetched(self, seconds: float) -> None:
        self.per_fetch += (seconds - self.per_fetch) * 0.2

    def handled(self, seconds: float, n: int) -> None:
        # A rough running average is enough; races between threads lose nothing.
        if n:
            self.per_message += (seconds / n - self.per_message) * 0.2

    def ahead(self) -> int:
        """Messages to keep in hand beyond one per idle thread: what the threads get through
        in four fetch times, at least one, at most ``prefetch``. A fetch begins once half of
        them are gone (``Lanes.may_fetch``) and must end before the rest are, and
        ``per_fetch`` times only its round trip, not the fetch loop's wake-up and its wait
        for the GIL among busy threads (with two fetch times, 10 ms handlers ran 5,920
        jobs/s at 64 threads against 6,130 with four, and 11,170 at 128 against 11,970). A
        fast handler gets the whole prefetch (the next batch comes while this one runs); a
        slow one a few, which its takes bring started (``started_ahead``), so a freed thread
        begins the next message at once instead of waiting a round trip for it (10 ms
        handlers at 8 threads: 0.89 of concurrency / handler time without, 0.93 with). When
        a thread frees up only every ``LONG_RUN`` fetch times or more (a handler's run over
        the threads), none is kept: a freed thread then waits a fetch, at most 2% of that
        time, and no message waits in the hand behind long runs where another worker could
        have begun it (a slow one with a rate limit keeps a few, to start through the
        limiter). Mixed 1-50 ms handlers at 32 threads free one every 0.8 ms: weighing the
        run alone kept none there and ran 1,221 jobs/s against 1,243."""
        if self.direct and self.per_message >= LONG_RUN * self.per_fetch * self.concurrency:
            return 0
        wanted = 4 * self.concurrency * self.per_fetch / max(self.per_message, 1e-9)
        return max(min(self.prefetch, 1), min(self.prefetch, math.ceil(wanted)))

    def started_ahead(self, room: int) -> bool:
        """Whether a take of ``room`` should bring its messages started (straight into the
        processing list: from then on a death counts a delivery). So it does when takes
        may start what they bring (no rate limit to pass) and a thread takes each
        message alone (a slow handler: a start per message would cost a round trip each,
        and a freed thread would wait for it) or takes the batch whole (one chunk)."""
        return self.direct and (self.per_message >= CHUNK_SECONDS or self.chunk(room) >= room > 1)

    def chunk(self, waiting: int) -> int:
        """How many of ``waiting`` unstarted messages a free thread takes at once: about
        ``CHUNK_SECONDS`` of work, so a slow handler takes one (a free thread always gets
        the next message) and a no-op one a whole batch (one round trip for many)."""
        return max(1, min(waiting, math.ceil(CHUNK_SECONDS / max(self.per_message, 1e-9))))


class Lane:
    """One queue's consumer and its taken, unstarted guards."""

    def __init__(self, consumer: ConsumerCore[Any]) -> None:
        self.consumer = consumer
        self.waiting: deque[GuardCore] = deque()
        self.suspects = 0  # waiting messages delivered before: each starts alone
        # Batches a quick worker took straight into the processing list: each one chunk.
        self.started: deque[list[GuardCore]] = deque()
        self.in_started = 0
        # Its last take came back short: the queue had no more. Not known at first, so
        # no lane below fetches before this one has looked.
        self.empty = False

    @property
    def queue(self) -> str:
        return str(self.consumer.queue)

    def unfenced(self, guards: list[GuardCore]) -> list[GuardCore]:
        """The guards of a started chunk still this worker's. A worker whose last beat is
        so old that its deadline has passed (its event loop was blocked, its process
        frozen) may have been reaped, and what it took may run elsewhere: it runs none of
        it (the next reconcile returns, uncounted, whatever the GC did not)."""
        consumer = self.consumer
        if consumer.heartbeat.late():
            consumer.heartbeat.fence()
        held = consumer.held
        void = [g for g in guards if g.epoch != held.epoch]
        if not void:
            return guards
        for g in void:
            g.settled = True
        held.forget([g.raw for g in void])
        log.warning("worker %s: %d message(s) taken before it was reaped are not run here",
                    held.consumer_id, len(void))  # fmt: skip
        return [g for g in guards if g.epoch == held.epoch]


class Lanes:
    """The worker's lanes in priority order, and its hand: messages taken and not yet
    started (in the lanes), and chunks running (``busy`` threads, ``running`` messages)."""

    def __init__(self, lanes: list[Lane], pace: Pace) -> None:
        self.lanes, self.pace = lanes, pace
        self.busy = self.running = 0

    def room(self, lane: Lane) -> int:
        """How many ``lane`` may take: a message for each idle thread and ``Pace.ahead``
        more, less what waits in it and the lanes before it (what lower lanes took never
        keeps a higher one from taking). Running chunks do not count: the next batch is
        fetched while they run."""
        return self.pace.concurrency - self.busy + self.pace.ahead() - self.unstarted_to(lane)

    def unstarted_to(self, lane: Lane) -> int:
        """Messages no thread began, in ``lane`` and the lanes before it."""
        n = 0
        for earlier in self.lanes:
            n += len(earlier.waiting) + earlier.in_started
            if earlier is lane:
                break
        return n

    def may_fetch(self, lane: Lane) -> bool:
        """A lane fetches only while every lane before it found its queue empty, and once
        its room is worth a round trip: nothing is left for a free thread, or half the
        messages to keep ahead are gone (not a few at a time behind each chunk taken)."""
        room = self.room(lane)
        if room <= 0 or (room < self.pace.ahead() // 2 and self.unstarted_to(lane)):
            return False
        for earlier in self.lanes:
            if earlier is lane:
                return True
            if not earlier.empty or earlier.waiting or earlier.started:
                return False
        return True

    def add(self, lane: Lane, guards: list[GuardCore], asked: int) -> int:
        """Put what a take of ``asked`` brought in ``lane``. Returns how many free loops
        to wake: one per message, and when the lane turns out empty, one per message the
        lanes below hold, which strict priority kept from them until now."""
        wake = len(guards)
        if len(guards) < asked and not lane.empty:
            below = self.lanes[self.lanes.index(lane) + 1 :]
            wake += sum(len(low.waiting) + low.in_started for low in below)
        lane.empty = len(guards) < asked
        started = [g for g in guards if g.started]
        if started:  # in the chunks free threads take (each its own, for a slow handler)
            n = self.pace.chunk(len(started))
            lane.started.extend(started[i : i + n] for i in range(0, len(started), n))
            lane.in_started += len(started)
            guards = [g for g in guards if not g.started] if len(started) < len(guards) else []
        lane.waiting.extend(guards)
        lane.suspects += sum(g.attempts > 1 for g in guards)
        return wake

    def ready(self) -> bool:
        """Whether a free thread would get a chunk now."""
        for lane in self.lanes:
            if lane.waiting or lane.started:
                return True
            if not lane.empty:
                return False
        return False

    def next_chunk(self) -> tuple[Lane, list[GuardCore], bool] | None:
        """The next unstarted messages for a free thread: from the first lane that has
        any, unless a lane before it may still find more in its queue (then wait for its
        fetch: strict priority). A message delivered before (a retry, or one recovered
        from a worker that died) starts alone: if it is a poison that kills the process,
        it takes no fresh chunk-mate with it, and after one such death it is the only one
        counted. The third item says whether the chunk is started already (taken
        straight into the processing list)."""
        for lane in self.lanes:
            if lane.started:
                chunk = lane.started.popleft()
                lane.in_started -= len(chunk)
                self.running += len(chunk)
                self.busy += 1
                return lane, chunk, True
            waiting = lane.waiting
            if not waiting:
                if not lane.empty:
                    return None
                continue
            n = self.pace.chunk(len(waiting))
            if not lane.suspects and n >= len(waiting):
                chunk = list(waiting)
                waiting.clear()
            elif not lane.suspects:
                chunk = [waiting.popleft() for _ in range(n)]
            elif waiting[0].attempts > 1:
                chunk = [waiting.popleft()]
                lane.suspects -= 1
            else:
                chunk = []
                while waiting and len(chunk) < n and waiting[0].attempts == 1:
                    chunk.append(waiting.popleft())
            self.running += len(chunk)
            self.busy += 1
            return lane, chunk, False
        return None

    def done(self, n: int) -> None:
        self.running -= n
        self.busy -= 1

    def unstarted(self) -> dict[Lane, list[GuardCore]]:
        """Forget every guard no thread began (their messages are handed back): by lane,
        those taken straight into the processing list."""
        began: dict[Lane, list[GuardCore]] = {}
        for lane in self.lanes:
            lane.waiting.clear()
            lane.suspects = 0
            began[lane] = [g for batch in lane.started for g in batch]
            lane.started.clear()
            lane.in_started = 0
        return began
