"""A worker's chunks: started, acked, and handed back when it stops.

A Worker's consumer takes into its prefetch list. A thread (or task) starts a chunk
by moving it to the processing list (``start.lua``): from then on a death counts
a delivery, before it none (no handler saw it). Its acks travel in the same round
trip as its next start. At a graceful stop, what no thread began goes back to the
front of the queue, uncounted, in bounded steps.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import scripts, search
from .guard import GuardCore, ack_step
from .heartbeat import RECOVER_CHUNK
from .held import Held
from .plan import raise_any


async def settle_start(
    held: Held, done: Sequence[GuardCore], chunk: Sequence[GuardCore], resent: bool = False
) -> list[GuardCore]:
    """Ack ``done`` and start ``chunk`` in one round trip (messages deep in a list are
    searched for in further calls, see search.py). Returns the guards of the chunk to
    handle; the others were cancelled, or taken back by the GC. ``resent``: after a lost
    reply, when the first sending may have been applied."""
    acked, begun = [g.raw for g in done], [g.raw for g in chunk]
    ack = ack_step(done) if done else None

    def start(raws: Sequence[bytes], rotate: bool) -> scripts.ScriptCall:
        return scripts.start(held.keys, held.prefetch, held.processing, raws, resent, rotate)

    calls = ([ack(acked, False)] if ack else []) + ([start(begun, False)] if chunk else [])
    try:
        replies = raise_any(await scripts.batch(calls))
        if ack is not None:
            await search.go_on(held, acked, ack, *search.statuses(replies[0], len(acked)))
        statuses = []
        if chunk:
            first = search.statuses(replies[-1], len(begun))
            statuses = await search.go_on(held, begun, start, *first)
    except BaseException as exc:
        if not isinstance(exc, Exception):  # cancelled in flight: the next take sorts it
            held.abandon(acked, seen=True)
            held.abandon(begun)
        raise
    for g in done:
        g.settled = True
    held.forget(acked, handled=True)
    started, dropped = [], []
    for g, status in zip(chunk, statuses, strict=True):
        if status in (1, 3):
            started.append(g)
        else:
            g.settled = True
            dropped.append(g.raw)
    held.forget(dropped)
    return started


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
