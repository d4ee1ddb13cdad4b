"""Search: settling messages that sit deep in a consumer's list, in bounded steps.

A script that settles messages by id looks at the oldest ``scripts.BUDGET`` elements of
the list, where a message almost always is (they are settled about in the order they
were taken). What it did not see there is searched for by further calls, each looking
at the next ``BUDGET`` elements: each call moves those it looked at and did not want to
the newest end, so no call costs more than its budget, whatever the list's length and
the message's place. A message counts as not there only once as many elements as the
list held when the search began have been looked at. One such search runs at a time
per consumer (its ``scan_lock``), so no other rotation can carry an element past it;
settles and takes meanwhile only remove elements or add them at the newest end, which
carries none past.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .held import Held
from .plan import Exclusive
from .scripts import ScriptCall

Step = Callable[[Sequence[bytes], bool], ScriptCall]  # (messages, rotate) -> the script run


def statuses(reply: Any, k: int) -> tuple[list[int], int, int]:
    """A settling script's reply as one status per message (0: not seen), the elements
    it looked at and the list's length (a whole number: all k done, nothing to go on)."""
    if isinstance(reply, int):
        return [1] * k, 0, 0
    found, looked, length = reply[:3]  # a start's fourth: its limiter's wait (chunks.py)
    return [int(s) for s in found], int(looked), int(length)


async def settle(held: Held, raws: Sequence[bytes], step: Step) -> list[int]:
    """Run ``step`` on ``raws``; search on for those it did not see; one status each."""
    found, looked, length = statuses(await step(raws, False).run(), len(raws))
    return await go_on(held, raws, step, found, looked, length)


async def go_on(
    held: Held, raws: Sequence[bytes], step: Step, found: list[int], looked: int, length: int
) -> list[int]:
    """After a first call that looked at ``looked`` of ``length`` elements: search the
    rest of the list for the messages not yet seen (status 0)."""
    if 0 in found and looked < length:
        await Exclusive(_search(raws, step, found), lock=held.scan_lock)
    return found


async def _search(raws: Sequence[bytes], step: Step, found: list[int]) -> None:
    """Look on, a budget a call, until the missing are found or as many elements as the
    list held when the search began (its first call's count, under the lock) were
    looked at. Not the first reply's count: between it and the lock, another search (of
    the same commit, say) may have carried a message behind elements added since."""
    looked, length = 0, -1
    while looked < length or length < 0:
        missing = [i for i, status in enumerate(found) if status == 0]
        if not missing:
            return
        reply = await step([raws[i] for i in missing], True).run()
        statuses_of_missing, n, before = statuses(reply, len(missing))
        for i, status in zip(missing, statuses_of_missing, strict=True):
            found[i] = status
        if n == 0:  # all were found, or the list is empty
            return
        length = before if length < 0 else length
        looked += n
