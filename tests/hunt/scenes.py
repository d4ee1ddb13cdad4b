"""The longer scenes of the hunt: a close() racing a take, a frozen event loop, the
drain at the end."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any

import orizuru_py

from .actors import WAIT, Slot
from .plan import HBT, MAX_ATTEMPTS, Step
from .snapshot import take

if TYPE_CHECKING:
    from .hunter import Hunter


def close_racing(h: Hunter, s: Slot, step: Step) -> str:
    """close() while a take (next_batch, 2 s) runs in another thread or task; what
    the take brought is then acked."""
    n, pause = 1 + step.a % 3, (step.b % 50) / 1000
    c: Any = s.consumer
    if s.is_async:

        async def both() -> list[Any]:
            taking = asyncio.ensure_future(c.next_batch(n, timeout=2.0))
            await asyncio.sleep(pause)
            await c.close()
            return list(await taking)

        got = h.loop.run(both())
    else:
        box: list[Any] = []
        thread = threading.Thread(target=lambda: box.extend(c.next_batch(n, timeout=2.0)))
        thread.start()
        time.sleep(pause)
        c.close()
        thread.join(WAIT)
        got = box
    for g in got:
        h.book.delivered(g.id, g.attempts, s.name, g.payload.get("n"))
        s.guards.append(g)
    acks = [h.act(s, g, 3) for g in got]
    return f" while taking {n}: got {len(got)}, then {acks}"


def freeze(h: Hunter, step: Step) -> str:
    """The asyncio loop stops past every deadline; a GC reaps its consumers meanwhile;
    when it resumes, each must find it was reaped, register again with its next beat,
    and its late acks must not count."""
    frozen = [s for s in h.slots.values() if s.is_async]
    worker = h.workers.get("w-a")
    h.loop.freeze(HBT + 1.0)
    time.sleep(HBT + 0.3)
    gc = orizuru_py.GarbageCollector(h.r, h.queue, max_attempts=MAX_ATTEMPTS)
    report = gc.collect()
    h.loop.run(asyncio.sleep(0))  # thawed
    for s in frozen:
        s.freezes += 1
    if worker is not None:
        worker.freezes += 1
    late = [h.act(s, g, 3) for s in frozen for g in list(s.guards)]
    ids = [s.consumer.id for s in frozen if s.consumer._started and not s.heartless]
    ids += [c.id for c in worker.worker.consumers if c._started] if worker else []
    end = time.monotonic() + 30
    while time.monotonic() < end:
        missing = set(ids) - set(take(h.r, h.queue, h.side).consumers)
        if not missing:
            break
        time.sleep(0.1)
    else:
        h.fail([f"frozen consumers {sorted(missing)} never registered again"])
    return f"froze {[s.name for s in frozen]}, w-a={worker is not None}: {report}; late {late}"


def drain(h: Hunter) -> None:
    """Stop everything gracefully, then take and ack until nothing live is left and no
    consumer but the drain's is registered; what stays past DRAIN seconds is a strand."""
    for name in sorted(h.workers):
        h.log.append(f"drain: {name} " + h.workers.pop(name).stop(0))
    for name in sorted(h.slots):
        s = h.slots.pop(name)
        s.guards.clear()
        s.call(s.consumer.close)
        s.drop()
        h.log.append(f"drain: {name} closed")
    h.q.resume()
    h.check()
    c = orizuru_py.Consumer(h.r, h.queue, name="drain", heartbeat_timeout=HBT,
                            max_attempts=MAX_ATTEMPTS)  # fmt: skip
    gc = orizuru_py.GarbageCollector(h.r, h.queue, max_attempts=MAX_ATTEMPTS)
    end, taken = time.monotonic() + h.drain_seconds, 0
    while True:
        gc.collect()
        for g in c.next_batch(50, timeout=0.2):
            taken += 1
            h.book.delivered(g.id, g.attempts, "drain", g.payload.get("n"))
            if g.ack():
                h.book.ack(g.id)
        snap = take(h.r, h.queue, h.side)
        left = {m: snap.where(m) for m in snap.places if snap.live(m)}
        others = sorted(set(snap.consumers) - {c.id})
        if not left and not others:
            break
        if time.monotonic() > end:
            late = f"{h.drain_seconds} s into the drain"
            h.fail([f"STRAND: {late}, left: {left}; consumers: {others}"])
    c.close()
    h.log.append(f"drain: took {taken}")
    h.check()
    snap = take(h.r, h.queue, h.side)
    problems = [f"consumers still registered: {sorted(snap.consumers)}"] * bool(snap.consumers)
    if snap.unique:
        problems.append(f"unique keys left with nothing live: {snap.unique}")
    if problems:
        h.fail(problems)
    dead = sum(1 for ps in snap.places.values() for p in ps if p.where == "dead")
    side = sum(1 for ps in snap.places.values() for p in ps if p.where == "side")
    h.figures = {
        "pushed": len(h.book.order), "deliveries": h.book.deliveries,
        "acked": len(h.book.acked), "handled": len(h.book.handled),
        "dead": dead, "side": side, "swallowed_cancels": h.swallows, **snap.counts,
    }  # fmt: skip
