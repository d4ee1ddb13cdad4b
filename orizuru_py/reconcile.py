"""Reconcile: make a consumer's lists agree with what it knows it holds.

A move whose reply was lost (and maybe resent by the client) leaves messages in a
consumer's list that no application code saw; they go back to the front of the
queue, uncounted. Messages whose settling the consumer gave up (a request cancelled
in flight, a connection lost for good) were handed out: they go to the unack list,
this delivery counted, so a message that keeps failing still reaches the dead list.
Bytes there that are no message at all are dead-lettered, as a take does with them.

Each list is read a window at a time from its oldest end (both windows in one
MULTI, so a chunk a worker's thread starts meanwhile is not seen in both lists), and
each window sorted by one bounded script; a list longer than a window has its known
elements moved to its newest end, so the next window shows the next ones, until as
many elements as the list held have been looked at.
"""

from __future__ import annotations

import logging
from collections import Counter

from . import envelope, scripts
from .delivery import dead_letter_garbage
from .held import Held
from .plan import Batch, Exclusive, raise_any

log = logging.getLogger("orizuru_py.consumer")


async def reconcile(held: Held) -> None:
    """Sort both of ``held``'s lists against what it knows (one search at a time)."""
    await Exclusive(_reconcile(held), lock=held.scan_lock)


async def _reconcile(held: Held) -> None:
    held.stale = False  # what goes wrong from now on sets it again
    try:
        await _sort(held)
    except BaseException:  # cancelled, or the connection failed: still due
        held.stale = True
        raise


async def _sort(held: Held) -> None:
    lists = (held.prefetch, held.processing)
    spare, seen = held.knowledge()
    lengths = raise_any(await Batch(tuple(("LLEN", key) for key in lists)))
    looked = [0, 0]
    rotated: Counter[bytes] = Counter()  # classified known: known again if met again
    while any(done < length for done, length in zip(looked, lengths, strict=True)):
        windows = raise_any(
            await Batch(tuple(("LRANGE", key, -scripts.BUDGET, -1) for key in lists), True)
        )
        for i, (key, window) in enumerate(zip(lists, windows, strict=True)):
            if looked[i] >= lengths[i]:
                continue
            known, unseen, counted, garbage = [], [], [], []
            for raw in reversed(window):  # oldest first
                if spare[raw] > 0:
                    spare[raw] -= 1
                    known.append(raw)
                elif rotated[raw] > 0:  # known, met again after moving on
                    known.append(raw)
                elif envelope.message_id(raw) is None:
                    garbage.append(raw)
                elif seen[raw] > 0 and key == held.processing:
                    seen[raw] -= 1
                    counted.append(raw)
                else:
                    unseen.append(raw)
            for raw in garbage:  # no id: dead-lettered, as a take does with it
                reason = "undecodable: not an orizuru envelope"
                await dead_letter_garbage(held, raw, reason, key, newest=False)
            step = scripts.reconcile(held.keys, key, known, unseen, counted, len(window))
            sorted_, back, returned = await step.run()
            rotated.update(known)
            whole = len(window) < scripts.BUDGET  # the whole list was in view: done
            done = whole or not sorted_
            looked[i] = lengths[i] if done else looked[i] + sorted_ + len(garbage)
            if back or returned:
                log.warning(
                    "consumer %s handed back %d message(s) it held without knowing (a lost "
                    "reply) and returned %d whose settling it gave up",
                    held.consumer_id,
                    back,
                    returned,
                )
