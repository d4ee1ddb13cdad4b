"""A worker's chunks: started, acked, and handed back when it stops.

A Worker's consumer takes into its prefetch list. A chunk is started by moving it
to the processing list (``start.lua``): from then on a death counts a delivery,
before it none (no handler saw it). A commit acks and starts the messages of all a
worker's lanes in one round trip (``control.py`` gathers them). At a graceful stop,
what no thread began goes back to the front of the queue, uncounted, in bounded
steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import attrs

from . import scripts, search
from .guard import GuardCore, ack_step
from .heartbeat import RECOVER_CHUNK
from .held import Held
from .limits import RateLimit
from .plan import raise_any


@attrs.frozen
class Part:
    """One consumer's share of a commit: messages it acks, and a chunk it starts (each
    start counted against ``rate``, when the worker has a rate limit)."""

    held: Held
    done: Sequence[GuardCore] = ()
    chunk: Sequence[GuardCore] = ()
    rate: RateLimit | None = None


@attrs.frozen
class Committed:
    """What a commit started: per part, the guards of its chunk to handle (the others
    were cancelled, taken back by the GC, or throttled); ``wait``: seconds until the
    queue's own rate limiter lets a start through, when it throttled some (else 0)."""

    started: list[list[GuardCore]]
    wait: float = 0.0


async def commit(parts: Sequence[Part], resent: bool = False) -> Committed:
    """Ack and start every part's messages in one round trip (messages deep in a list
    are searched for in further calls, see search.py). ``resent``: after a lost reply,
    when the first sending may have been applied."""
    steps: list[tuple[Held, list[bytes], search.Step]] = []
    for part in parts:
        for done in _slices(part.done):
            steps.append((part.held, [g.raw for g in done], ack_step(done)))
        for chunk in _slices(part.chunk):
            step = _start_step(part.held, resent, part.rate, chunk)
            steps.append((part.held, [g.raw for g in chunk], step))
    calls = [step(raws, False) for _, raws, step in steps]
    try:
        replies = raise_any(await scripts.batch(calls))
        found = [
            await search.go_on(held, raws, step, *search.statuses(reply, len(raws)))
            for (held, raws, step), reply in zip(steps, replies, strict=True)
        ]
    except BaseException as exc:
        if not isinstance(exc, Exception):  # cancelled in flight: the next take sorts it
            for part in parts:
                part.held.abandon([g.raw for g in part.done], seen=True)
                part.held.abandon([g.raw for g in part.chunk])
        raise
    statuses = iter(found)
    waits = [int(r[3]) for r in replies if isinstance(r, list) and len(r) > 3]
    return Committed([_settled(part, statuses) for part in parts], max(waits, default=0) / 1000)


def _slices(guards: Sequence[GuardCore]) -> list[Sequence[GuardCore]]:
    """At most BUDGET messages per script call."""
    return [guards[i : i + scripts.BUDGET] for i in range(0, len(guards), scripts.BUDGET)]


def _start_step(
    held: Held, resent: bool, rate: RateLimit | None, chunk: Sequence[GuardCore]
) -> search.Step:
    names = {g.raw: rate.name_of(g.payload) for g in chunk} if rate is not None else {}

    def start(raws: Sequence[bytes], rotate: bool) -> scripts.ScriptCall:
        limited = (rate, [names[r] for r in raws]) if rate is not None else None
        k = held.keys
        return scripts.start(k, held.prefetch, held.processing, raws, resent, rotate, limited)

    return start


def _settled(part: Part, statuses: Iterator[list[int]]) -> list[GuardCore]:
    """The bookkeeping of one part after its commit: the acked ones forgotten, the
    chunk's guards to run (status 1 started, 3 started by a lost first sending; the
    others are no longer this worker's: 0 gone, 2 cancelled, 4 throttled)."""
    held = part.held
    for _ in _slices(part.done):
        next(statuses)
    for g in part.done:
        g.settled = True
    held.forget([g.raw for g in part.done], handled=True)
    chunk_statuses = [s for _ in _slices(part.chunk) for s in next(statuses)]
    started, dropped = [], []
    for g, status in zip(part.chunk, chunk_statuses, strict=True):
        if status in (1, 3):
            started.append(g)
        else:
            g.settled = True
            dropped.append(g.raw)
    held.forget(dropped)
    return started


async def settle_start(
    held: Held, done: Sequence[GuardCore], chunk: Sequence[GuardCore], resent: bool = False
) -> list[GuardCore]:
    """Ack ``done`` and start ``chunk`` of one consumer in one round trip (``commit``)."""
    return (await commit([Part(held, done, chunk)], resent)).started[0]


async def release(held: Held, started: Sequence[GuardCore] = ()) -> int:
    """Hand every unstarted message back to the front of the queue, uncounted, in bounded
    steps, and the ``started`` ones no handler saw (taken straight into the processing
    list); returns how many. Safe to send again."""
    moved = 0
    if started:
        raws = [g.raw for g in reversed(started)]
        moved = await scripts.hand_back(held.keys, held.processing, raws).run()
        held.forget(raws)
    left = 1
    step = scripts.release(held.keys, held.prefetch, RECOVER_CHUNK)
    while left:
        n, left = await step.run()
        moved += n
    return moved
