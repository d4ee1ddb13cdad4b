"""Reconcile: make a consumer's lists agree with what it knows it holds.

A move whose reply was lost (and maybe resent by the client) leaves messages in a
consumer's list that no application code saw; they go back to the front of the
queue, uncounted. Bytes there that are no message at all are dead-lettered, as a
take does with them.
"""

from __future__ import annotations

import logging

from . import envelope, scripts
from .delivery import dead_letter_garbage
from .held import Held
from .plan import Batch, raise_any

log = logging.getLogger("orizuru_py.consumer")


async def hand_back_unknown(held: Held) -> None:
    """Return to the queue what sits in our lists without our knowing. Both lists are read
    in one MULTI, so a chunk a worker's thread starts meanwhile is not seen twice."""
    lists = (held.prefetch, held.processing)
    spare = held.copies()  # before the lists: a message acked meanwhile is not "unknown"
    contents = raise_any(await Batch(tuple(("LRANGE", key, 0, -1) for key in lists), True))
    for key, items in zip(lists, contents, strict=True):
        unknown = []
        for raw in reversed(items):  # oldest first
            if spare.get(raw, 0) > 0:
                spare[raw] -= 1
            else:
                unknown.append(raw)
        garbage = [raw for raw in unknown if envelope.message_id(raw) is None]
        for raw in garbage:  # no id: dead-lettered, as a take does with it
            await dead_letter_garbage(held, raw, "undecodable: not an orizuru envelope", key)
        moved = 0
        if len(garbage) < len(unknown):
            rest = [raw for raw in unknown if raw not in garbage]
            moved = await scripts.hand_back(held.keys, key, rest).run()
        if moved:
            log.warning(
                "consumer %s handed back %d message(s) it held without knowing (a lost reply)",
                held.consumer_id,
                moved,
            )
    held.stale = False
