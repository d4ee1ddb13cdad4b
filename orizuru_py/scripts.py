"""The Lua scripts in ``scripts/``, loaded once and run by SHA, and one binding per
script that builds its keys and arguments: the only place that knows their order.

redis-py's own ``Script`` in a pipeline asks ``SCRIPT EXISTS`` on every execute, a
second round trip; ours sends ``EVALSHA`` alone and loads the script only when the
server answers ``NOSCRIPT`` (first use, or after a restart). Each script is sent
with only the lib.lua helpers it calls: every function defined costs the server
time on every call.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

import attrs
from redis.exceptions import NoScriptError

from .envelope import packed_ids
from .errors import ScriptsLost
from .keys import QueueKeys
from .limits import RateLimit
from .plan import Batch, Call, Load

_DIR = resources.files(__package__) / "scripts"
_HELPER = re.compile(r"\boz_\w+")


def _helpers() -> dict[str, str]:
    """lib.lua's functions by name, each with the comment above it."""
    blocks = (_DIR / "lib.lua").read_text(encoding="utf-8").split("\n\n")
    found = {}
    for block in blocks:
        match = re.search(r"^local function (oz_\w+)", block, re.M)
        if match:
            found[match.group(1)] = block
    return found


_LIB = _helpers()


def _code(lua: str) -> str:
    """``lua`` without its comments (a helper named in a comment is not used)."""
    return re.sub(r"--[^\n]*", "", lua)


def _with_helpers(body: str) -> str:
    """``body`` after the lib.lua functions it uses, directly or through each other."""
    needed: list[str] = []
    todo = _HELPER.findall(_code(body))
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.append(name)
        todo.extend(_HELPER.findall(_code(_LIB[name])))
    order = [name for name in _LIB if name in needed]  # lib.lua's order: callees first
    return "\n\n".join([*(_LIB[name] for name in order), body])


class Script:
    """One ``.lua`` file of ``scripts/``, after the lib.lua helpers it uses."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = _with_helpers((_DIR / f"{name}.lua").read_text(encoding="utf-8"))
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"Script({self.name!r})"


@attrs.frozen
class ScriptCall:
    """One run of a script, with the keys and arguments its binding built."""

    script: Script
    keys: tuple[str | bytes, ...]
    argv: tuple[Any, ...]

    @property
    def command(self) -> tuple[Any, ...]:
        """The EVALSHA command, to send alone or among others (``batch``)."""
        return ("EVALSHA", self.script.sha, len(self.keys), *self.keys, *self.argv)

    async def run(self) -> Any:
        """Run it, loading it first where the server does not know it."""
        try:
            return await Call(self.command)
        except NoScriptError:
            await Load(self.script.source)
        try:
            return await Call(self.command)
        except NoScriptError as exc:
            raise lost(exc) from exc


Command = tuple[Any, ...] | ScriptCall
Pushed = tuple[str | None, str, bytes]  # a message to push: unique key, id, bytes


async def batch(calls: Sequence[Command]) -> list[Any]:
    """Send ``calls`` (commands and script runs) in one round trip, not a transaction.
    Where a server did not know a script (NOSCRIPT: that call did nothing), load it and
    resend only those calls."""
    commands = tuple(c.command if isinstance(c, ScriptCall) else c for c in calls)
    replies: list[Any] = await Batch(commands)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        for script in {id(c.script): c.script for c in calls if isinstance(c, ScriptCall)}.values():
            await Load(script.source)
        again = await Batch(tuple(commands[i] for i in missing))
        for i, reply in zip(missing, again, strict=True):
            replies[i] = lost(reply) if isinstance(reply, NoScriptError) else reply
    return replies


def lost(exc: NoScriptError) -> ScriptsLost:
    """What a NOSCRIPT right after the load means: another server answered."""
    return ScriptsLost(f"the server lost a script just loaded (a failover?): {exc}")


# A message's way: pushed, taken, started (workers), settled.
PUSH = Script("push")
TAKE = Script("take")
START = Script("start")
ACK = Script("ack")
MOVE = Script("move")
RETRY = Script("retry")
DEAD_LETTER = Script("dead_letter")
DROP = Script("drop")
RELEASE = Script("release")
HAND_BACK = Script("hand_back")
RECONCILE = Script("reconcile")
# A consumer's life: its beat; its close, or its reaping by the GC.
REGISTER = Script("register")
RECOVER = Script("recover")
# The garbage collector.
EXPIRED = Script("expired")
REQUEUE_UNACK = Script("requeue_unack")
PROMOTE = Script("promote")
SWEEP = Script("sweep")
# Operators.
REVIVE = Script("revive")
FIND = Script("find")
PEEK = Script("peek")
CANCEL_MARK = Script("cancel_mark")
CANCEL_END = Script("cancel_end")
# Periodic messages (schedule.py).
SCHEDULE_ADD = Script("schedule_add")
SCHEDULE_REMOVE = Script("schedule_remove")
SCHEDULE_DUE = Script("schedule_due")
SCHEDULE_PUSH = Script("schedule_push")

# -- the bindings: each script's keys, in its order, and its arguments ----------------------
# Lists of messages travel as their packed ids (envelope.packed_ids), oldest first. A
# script that looks for messages in a list looks at no more than BUDGET of its elements
# per call; ``rotate``: a pass of a search that goes on (see search.py).

Key = str | bytes
BUDGET = 1000  # list elements a script looks at per call when it searches
REACH = 10_000  # how far from an end a deleted list element is removed at once


def push(k: QueueKeys, delay_ms: int, unique_ms: int, messages: Sequence[Pushed]) -> ScriptCall:
    """Queue messages (unique key or "", id, bytes) now or after ``delay_ms``; returns the
    ids, each its own or the live one a unique key names."""
    argv: list[Any] = [delay_ms, unique_ms]
    for key, mid, raw in messages:
        argv += (key or "", mid, raw)
    return ScriptCall(PUSH, (k.queue, k.delayed, k.unique, k.unique_expiry), tuple(argv))


def take(
    k: QueueKeys, dest: str, processing: str, consumer: str, deadline_ms: int, n: int,
    started: bool,
) -> ScriptCall:  # fmt: skip
    """Register ``consumer`` until ``deadline_ms`` and move up to ``n`` waiting messages to
    ``dest`` (``started``: a quick worker's batch straight to ``processing``)."""
    keys = (k.consumers, k.queue, dest, k.paused, k.cancel, k.unique, k.unique_expiry,
            k.counts, processing)  # fmt: skip
    return ScriptCall(TAKE, keys, (consumer, deadline_ms, n, "started" if started else ""))


def start(
    k: QueueKeys, prefetch: str, processing: str, raws: Sequence[bytes], resent: bool,
    rotate: bool = False, rate: tuple[RateLimit, Sequence[str]] | None = None,
) -> ScriptCall:  # fmt: skip
    """Move a worker's chunk from its prefetch list to its processing list (``resent``:
    after a lost reply, when the first sending may have been applied); with ``rate``, each
    start counts against its limiter (the limit, and each message's limiter key)."""
    keys: list[Key] = [prefetch, processing, k.cancel, k.unique, k.unique_expiry, k.counts]
    argv: list[Any] = [_flag(resent), packed_ids(raws), len(raws), BUDGET, _flag(rotate)]
    if rate is not None:
        limit, of_each = rate
        index: dict[str, int] = {}
        for name in of_each:
            index.setdefault(name, len(index) + 1)
        keys += [k.queue, k.delayed, k.throttled]
        for name in index:
            keys += k.rate(name)
        argv += [limit.limit, limit.per_ms, len(index), *index, *(index[n] for n in of_each)]
    return ScriptCall(START, tuple(keys), tuple(argv))


def ack(
    k: QueueKeys, processing: str, raws: Sequence[bytes], unique_at: Sequence[int],
    rotate: bool = False,
) -> ScriptCall:  # fmt: skip
    """Remove acknowledged messages; ``unique_at``: the positions (from 1) of those that
    carry a unique key, to free it."""
    keys = (processing, k.cancel, k.unique, k.unique_expiry)
    argv = (packed_ids(raws), len(raws), BUDGET, _flag(rotate), *unique_at)
    return ScriptCall(ACK, keys, argv)


def move(
    k: QueueKeys, processing: str, target: str, raws: Sequence[bytes], leaves: bool,
    rotate: bool = False,
) -> ScriptCall:  # fmt: skip
    """Move one message to the back of ``target`` (the unack list, or a queue of this slot;
    ``leaves``: it leaves this queue, its unique key and cancellation mark with it)."""
    keys = (processing, target, k.unique, k.unique_expiry, k.cancel)
    return ScriptCall(MOVE, keys, (packed_ids(raws), _flag(leaves), BUDGET, _flag(rotate)))


def retry(
    k: QueueKeys, processing: str, raws: Sequence[bytes], delay_ms: int, rotate: bool = False,
    limiter: str | None = None,
) -> ScriptCall:  # fmt: skip
    """Move one message to the delayed set, a delivery counted; or (``limiter``: its
    handler was rate limited) uncounted, pausing that limiter ("" the queue's own) as long."""
    argv: tuple[Any, ...] = (packed_ids(raws), delay_ms, BUDGET, _flag(rotate))
    if limiter is None:
        return ScriptCall(RETRY, (processing, k.delayed), argv)
    keys = (processing, k.delayed, k.rate(limiter)[1], k.throttled)
    return ScriptCall(RETRY, keys, (*argv, limiter))


def dead_letter(
    k: QueueKeys, source: str, reason: str, raws: Sequence[bytes], rotate: bool = False
) -> ScriptCall:
    """Move messages of ``source`` (a consumer's list) to the dead-letter list."""
    keys = (source, k.dead, k.cancel, k.unique, k.unique_expiry)
    argv = (reason, "ids", packed_ids(raws), BUDGET, _flag(rotate))
    return ScriptCall(DEAD_LETTER, keys, argv)


def dead_letter_garbage(
    k: QueueKeys, source: str, reason: str, raw: bytes, newest: bool, look: int = BUDGET
) -> ScriptCall:
    """Move bytes that are no message at all (no id to find them by) to the dead list,
    looking for them among the ``look`` newest elements of ``source`` (a take just moved
    them there), or the oldest."""
    keys = (source, k.dead, k.cancel, k.unique, k.unique_expiry)
    return ScriptCall(DEAD_LETTER, keys, (reason, "raw", raw, 1 if newest else -1, look))


def drop(
    k: QueueKeys, source: str, why: str, raws: Sequence[bytes], look: int = BUDGET
) -> ScriptCall:
    """Take messages a take just moved into ``source`` out of it undelivered, counted:
    ``why`` "expired" or "cancelled" (only those with a pending cancellation), looking
    among its ``look`` newest elements."""
    keys = (source, k.cancel, k.unique, k.unique_expiry, k.counts)
    return ScriptCall(DROP, keys, (why, packed_ids(raws), max(look, len(raws) + BUDGET)))


def release(k: QueueKeys, prefetch: str, limit: int) -> ScriptCall:
    """Hand up to ``limit`` unstarted messages back to the front, uncounted."""
    return ScriptCall(RELEASE, (prefetch, k.queue), (limit,))


def hand_back(k: QueueKeys, source: str, raws: Sequence[bytes]) -> ScriptCall:
    """Hand messages a take just moved into ``source``, which no application code will
    see, back to the front of the queue, uncounted."""
    return ScriptCall(HAND_BACK, (source, k.queue), (packed_ids(raws), len(raws) + BUDGET))


def reconcile(
    k: QueueKeys, source: str, known: Sequence[bytes], unseen: Sequence[bytes],
    seen: Sequence[bytes], window: int,
) -> ScriptCall:  # fmt: skip
    """Sort the oldest ``window`` elements of one of a consumer's lists, which it has just
    read: ``known`` stay its, ``unseen`` (no application code saw them) go back to the
    front of the queue uncounted, ``seen`` (their settling given up) to the unack list."""
    argv = (packed_ids(known), packed_ids(unseen), packed_ids(seen), window)
    return ScriptCall(RECONCILE, (source, k.queue, k.unack), argv)


def register(k: QueueKeys, consumer: str, timeout_ms: int, info: bytes) -> ScriptCall:
    """A heartbeat: ``consumer`` registered until now + ``timeout_ms``, ``info`` beside."""
    return ScriptCall(REGISTER, (k.consumers, k.info, k.cancel), (consumer, timeout_ms, info))


def recover(k: QueueKeys, member: Key, max_attempts: int, limit: int, mode: str) -> ScriptCall:
    """Move a chunk of a consumer's lists back to the queue (``mode`` "close" or "reap")."""
    processing, prefetch = k.of_member(member.encode() if isinstance(member, str) else member)
    keys = (k.consumers, k.info, processing, prefetch, k.queue, k.dead, k.unique,
            k.unique_expiry, k.counts, k.cancel)  # fmt: skip
    return ScriptCall(RECOVER, keys, (member, max_attempts, limit, mode))


def expired(k: QueueKeys, limit: int) -> ScriptCall:
    """The server's time, consumers past their deadline, the next deadline."""
    return ScriptCall(EXPIRED, (k.consumers,), (limit,))


def requeue_unack(k: QueueKeys, max_attempts: int, limit: int) -> ScriptCall:
    """Return rejected messages to the queue, counted, or dead-letter them."""
    keys = (k.unack, k.queue, k.dead, k.unique, k.unique_expiry, k.counts, k.cancel)
    return ScriptCall(REQUEUE_UNACK, keys, (max_attempts, limit))


def promote(k: QueueKeys, limit: int) -> ScriptCall:
    """Move up to ``limit`` due delayed messages to the queue."""
    return ScriptCall(PROMOTE, (k.delayed, k.queue), (limit,))


def sweep(k: QueueKeys, limit: int, cursor: Any, max_age_ms: int) -> ScriptCall:
    """Forget lapsed unique keys and stale cancellation marks, a page per call."""
    return ScriptCall(SWEEP, (k.unique, k.unique_expiry, k.cancel), (limit, cursor, max_age_ms))


def revive(k: QueueKeys, limit: int, unique_for_ms: int) -> ScriptCall:
    """Move up to ``limit`` dead letters back to the queue, fresh counts, each taking its
    unique key again for ``unique_for_ms``."""
    keys = (k.dead, k.queue, k.unique, k.unique_expiry, k.counts)
    return ScriptCall(REVIVE, keys, (limit, unique_for_ms))


def find(
    k: QueueKeys, target: Key, kind: str, message_id: str, first: int, size: int, action: str,
    role: str = "", unique_for_ms: int = 0,
) -> ScriptCall:  # fmt: skip
    """Look through one page of ``target`` (its ``role``: queue, unack or dead) for a
    message and act on it."""
    keys = (target, k.queue, k.cancel, k.unique, k.unique_expiry, k.counts)
    argv = (kind, message_id, first, size, action, role, unique_for_ms, REACH)
    return ScriptCall(FIND, keys, argv)


def peek(source: Key, kind: str, first: int, n: int, cut: int, budget: int) -> ScriptCall:
    """Up to ``n`` elements of ``source`` from ``first`` on (in the order they are acted
    on), each as its size and first ``cut`` bytes (-1: all), reading at most ``budget``
    bytes (always one element)."""
    return ScriptCall(PEEK, (source,), (kind, first, n, cut, budget))


def cancel_mark(k: QueueKeys, message_id: str) -> ScriptCall:
    """Mark a message cancelled, so every take that meets it drops it."""
    return ScriptCall(CANCEL_MARK, (k.cancel,), (message_id,))


def cancel_end(k: QueueKeys, message_id: str, seen: str) -> ScriptCall:
    """Decide a cancellation from where the message was ``seen``."""
    return ScriptCall(CANCEL_END, (k.cancel,), (message_id, seen))


def schedule_add(
    k: QueueKeys, name: str, cadence: bytes, payload: bytes, first_ms: int
) -> ScriptCall:
    """Add or replace a periodic entry of this queue; returns the due time in force (the
    one it had when neither cadence nor payload changed)."""
    keys = (k.schedule, k.schedule_payload, k.schedule_due)
    return ScriptCall(SCHEDULE_ADD, keys, (name, cadence, payload, first_ms))


def schedule_remove(k: QueueKeys, name: str) -> ScriptCall:
    """Remove a periodic entry of this queue; 1 if it had it."""
    keys = (k.schedule, k.schedule_payload, k.schedule_due)
    return ScriptCall(SCHEDULE_REMOVE, keys, (name,))


def schedule_due(k: QueueKeys, limit: int) -> ScriptCall:
    """The server's time, when the next entry is due, and up to ``limit`` due entries
    (name, due time, cadence, payload)."""
    keys = (k.schedule, k.schedule_payload, k.schedule_due)
    return ScriptCall(SCHEDULE_DUE, keys, (limit,))


def schedule_push(k: QueueKeys, ticks: Sequence[tuple[Key, int, int | None, bytes]]) -> ScriptCall:
    """Push due ticks (entry name, due time read, next due time or None, message or b"":
    none), each only if its entry is still due at the time read; returns how many."""
    argv: list[Any] = []
    for name, due, following, raw in ticks:
        argv += (name, due, "" if following is None else following, raw)
    return ScriptCall(SCHEDULE_PUSH, (k.schedule_due, k.queue), tuple(argv))


def _flag(on: bool) -> str:
    return "1" if on else "0"
