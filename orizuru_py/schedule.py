"""Schedule: periodic messages, each due tick pushed exactly once, with no leader.

An entry names a queue, a payload and a cadence (``cadence.py``). It lives in its
queue's slot: cadence and payload in two hashes, its next due time (server ms) in a
sorted set, so that pushing a tick and moving the due time forward is one script on one
slot. Lua cannot read a cron expression, so whoever promotes ticks (every consumer's
beat, every GC pass, ``orizuru scheduler``) reads the due entries (schedule_due.lua),
reckons each one's next due time, and sends both back (schedule_push.lua), which pushes
a tick only if its entry is still due at the time read and moves that time forward in
the same step: however many promoters race, exactly one pushes each tick, and one that
dies between the two steps changed nothing. A tick is pushed as a normal message whose
``enqueued_ms`` is the time it was due. ``prefix:schedules``, the set of queues entries
target, lets ``list``, ``remove`` and the scheduler find every entry without SCAN.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from . import envelope, scripts
from .cadence import Cadence
from .client import TRANSIENT, Client
from .codecs import Codec, MsgpackCodec
from .errors import EncodeError
from .keys import QueueKeys, schedules, validate_name
from .outage import Retrying
from .plan import Batch, Call, Driver, Pause, blocking, raise_any
from .producer import DEFAULT_MAX_PAYLOAD_BYTES
from .stats import pairs

log = logging.getLogger("orizuru_py.schedule")

BATCH = 100  # due entries read per script call
DEFAULT_INTERVAL = 1.0  # seconds between a scheduler's passes, at most
_ROUNDS = 100  # reads of the due entries per scheduler pass, at most


@attrs.frozen
class ScheduleEntry:
    """One periodic entry: what it pushes where, and when (``next_due_ms``: server ms;
    None when it has no next time, or its stored form cannot be read: ``error`` says)."""

    name: str
    queue: str
    cron: str | None
    tz: str | None
    every: float | None
    payload: Any
    next_due_ms: int | None
    error: str | None = None

    @property
    def next_due(self) -> datetime | None:
        """``next_due_ms`` as an aware datetime in UTC."""
        if self.next_due_ms is None:
            return None
        return datetime.fromtimestamp(self.next_due_ms / 1000, UTC)

    @property
    def cadence(self) -> str:
        """``0 3 * * * (UTC)``, ``every 10s``, or ``?`` for an entry that cannot be read."""
        if self.cron is None and self.every is None:
            return "?"
        return Cadence(
            self.cron, self.tz, None if self.every is None else round(self.every * 1000)
        ).describe()

    def to_json(self) -> dict[str, Any]:
        """The entry as ``orizuru schedule list --json`` and the dashboard's API give it."""
        return attrs.asdict(self, recurse=False) | {"cadence": self.cadence}


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _server_ms(reply: Any) -> int:
    seconds, micros = reply
    return int(seconds) * 1000 + int(micros) // 1000


_passed_over: set[str] = set()  # names of the index already logged as no queue's


def _targets(names: Sequence[Any], prefix: str) -> list[QueueKeys]:
    """The keys of the queues in the index, sorted; a name no queue could have (whatever
    could write the index may have written anything) is passed over, and logged the
    first time (a scheduler and the dashboard read the index every second or two)."""
    found = []
    for name in sorted({_text(n) for n in names}):
        try:
            found.append(QueueKeys(name, prefix))
        except ValueError as exc:
            if name not in _passed_over and len(_passed_over) < 1000:
                _passed_over.add(name)
                log.warning("schedule index %s names no queue: %s", schedules(prefix), exc)
    return found


# -- promoting ticks: the step a beat, a GC pass and the scheduler share ------------------


def earliest(k: QueueKeys) -> tuple[Any, ...]:
    """The command a beat adds to its round trip: ``k``'s entry due first, with its due
    time. A plain read of a key that is usually missing: a beat pays next to nothing
    for periodic messages until one is due."""
    return ("ZRANGE", k.schedule_due, 0, 0, "WITHSCORES")


def due(k: QueueKeys) -> scripts.ScriptCall:
    """The call that reads up to ``BATCH`` of ``k``'s due entries."""
    return scripts.schedule_due(k, BATCH)


def ticks(k: QueueKeys, reply: list[Any]) -> scripts.ScriptCall | None:
    """The push of the ticks a ``due`` reply names, each with its next due time; None
    when none is due. An entry whose stored cadence or payload cannot be read gets no
    next time and pushes nothing: it stays listed, with its error, until added again."""
    now = int(reply[0])
    found: list[tuple[Any, int, int | None, bytes]] = []
    for i in range(2, len(reply), 4):
        name, due_ms, packed, payload = reply[i : i + 4]
        due_ms = int(due_ms)
        try:
            if payload is None:
                raise ValueError("its payload is missing")
            following = Cadence.unpack(packed or b"").following(due_ms, now)
        except ValueError as exc:
            log.warning("periodic entry %r of queue %s stops: %s", _text(name), k.name, exc)
            found.append((name, due_ms, None, b""))
            continue
        raw = envelope.encode(envelope.new_id(due_ms), due_ms, bytes(payload))
        found.append((name, due_ms, following, raw))
    return scripts.schedule_push(k, found) if found else None


def upcoming(reply: list[Any]) -> tuple[int, int]:
    """(the server's time, when the next entry not yet pushed is due: -1 for none)."""
    return int(reply[0]), int(reply[1])


async def promote(k: QueueKeys) -> int:
    """Push every due tick of queue ``k``'s entries, a batch a call; returns how many
    this call pushed (others racing may push some of them)."""
    pushed = 0
    while True:
        reply = await due(k).run()
        push = ticks(k, reply)
        if push is not None:
            pushed += int(await push.run())
        if upcoming(reply)[1] != int(reply[0]):  # not a full batch: done
            return pushed


async def push_due(k: QueueKeys, first: Any, server_ms: int) -> int:
    """After a beat: push the due ticks, if the entry due first (``earliest``'s reply,
    read in the beat's round trip) was due by then. A failure of the server to run them
    (a foreign value in a key) is logged, never raised: the beat goes on."""
    try:
        if isinstance(first, Exception):
            raise first
        found = pairs(first)
        if not found or found[0][1] > server_ms:
            return 0
        return await promote(k)
    except TRANSIENT:
        raise
    except Exception as exc:
        log.warning("queue %s: could not push due periodic messages: %s", k.name, exc)
        return 0


class ScheduleCore:
    """What a schedule decides; ``Schedule`` and the asyncio one only do the I/O."""

    driver_class: type[Any] = Driver

    def __init__(
        self,
        r: Client,
        *,
        prefix: str = "orizuru",
        codec: Codec | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        QueueKeys("schedule", prefix)  # the prefix's check
        if not isinstance(max_payload_bytes, int) or max_payload_bytes < 1:
            raise ValueError(f"max_payload_bytes must be a positive int, got {max_payload_bytes}")
        self.r, self.prefix = r, prefix
        self.codec = codec or MsgpackCodec()
        self.max_payload_bytes = max_payload_bytes
        self._driver = self.driver_class(r)
        self._retrying = Retrying(r, "scheduler")
        self._wake_ms: int | None = None  # after a pass: ms until the next entry is due

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r})"

    async def _add(
        self,
        name: str,
        queue: str,
        payload: Any = None,
        *,
        cron: str | None = None,
        every: float | None = None,
        tz: str | None = None,
    ) -> ScheduleEntry:
        """Push ``payload`` to ``queue`` at each time ``cron`` names in time zone ``tz``
        (default UTC), or every ``every`` seconds (first in ``every`` seconds). An entry
        of this name is replaced, wherever it pointed; the same one again keeps its next
        due time. Returns the entry."""
        name = validate_name(name, "entry name")
        k = QueueKeys(queue, self.prefix)
        cadence = Cadence.of(cron, every, tz)
        data = self.codec.encode(payload)
        if len(data) > self.max_payload_bytes:
            most = self.max_payload_bytes
            raise EncodeError(
                f"payload is {len(data)} bytes encoded, over max_payload_bytes={most}"
            )
        index = schedules(self.prefix)
        # Into the index before the entry exists, so that no entry is ever out of sight.
        time, _, _, members = raise_any(
            await Batch(
                (
                    ("TIME",),
                    ("SADD", index, k.name),
                    ("SADD", k.registry, k.name),
                    ("SMEMBERS", index),
                )
            )
        )
        first = cadence.first(_server_ms(time)) or 0  # never None: checked by Cadence.of
        elsewhere = [t for t in _targets(members, self.prefix) if t.name != k.name]
        calls = [scripts.schedule_remove(t, name) for t in elsewhere]
        calls.append(scripts.schedule_add(k, name, cadence.pack(), data, first))
        due_ms = int(raise_any(await scripts.batch(calls))[-1])
        return _entry(name, k.name, cadence, payload, due_ms)

    async def _remove(self, name: str) -> bool:
        """Remove the entry ``name``: True if there was one."""
        name = validate_name(name, "entry name")
        targets = await self._targets()
        if not targets:
            return False
        found = raise_any(await scripts.batch([scripts.schedule_remove(t, name) for t in targets]))
        return any(found)

    async def _list(self, payloads: bool = True) -> list[ScheduleEntry]:
        """Every entry, by next due time (those without one last), then name. Without
        ``payloads`` none is read (``payload`` None): what a status page needs."""
        targets = await self._targets()
        calls: list[tuple[Any, ...]] = []
        for k in targets:
            calls += [("HGETALL", k.schedule), ("ZRANGE", k.schedule_due, 0, -1, "WITHSCORES")]
            if payloads:
                calls.append(("HGETALL", k.schedule_payload))
        replies = iter(raise_any(await Batch(tuple(calls))) if calls else [])
        entries = []
        for k in targets:
            cadences, due_times = next(replies), dict(pairs(next(replies)))
            stored = next(replies) if payloads else {}
            for name, packed in cadences.items():
                entries.append(
                    self._read(k, name, packed, stored.get(name), due_times.get(name), payloads)
                )
        return sorted(entries, key=lambda e: (e.next_due_ms is None, e.next_due_ms or 0, e.name))

    def _read(
        self, k: QueueKeys, name: Any, packed: bytes, data: bytes | None, due_ms: float | None,
        payloads: bool,
    ) -> ScheduleEntry:  # fmt: skip
        """One stored entry as an ``ScheduleEntry``, its problem in ``error`` if any."""
        due_at = None if due_ms is None else int(due_ms)
        try:
            cadence = Cadence.unpack(packed)
        except ValueError as exc:
            return ScheduleEntry(_text(name), k.name, None, None, None, None, due_at, str(exc))
        payload, error = None, None
        if payloads:
            try:
                if data is None:
                    raise ValueError("the payload is missing")
                payload = self.codec.decode(data)
            except Exception as exc:  # a codec raises what it raises
                payload, error = data, f"the payload does not decode: {exc}"
        return _entry(_text(name), k.name, cadence, payload, due_at, error)

    async def _targets(self) -> list[QueueKeys]:
        return _targets(await Call(("SMEMBERS", schedules(self.prefix))), self.prefix)

    async def _promote(self) -> int:
        """One pass over every queue with entries: push each due tick; returns how many
        this pass pushed. A queue where some were pushed is read again, for when its
        entries are due next (and the rest, where more were due than a batch)."""
        pending, pushed = await self._targets(), 0
        self._wake_ms = None
        for _ in range(_ROUNDS):
            if not pending:
                break
            replies = await scripts.batch([due(k) for k in pending])
            pushes: list[tuple[QueueKeys, scripts.ScriptCall]] = []
            for k, reply in zip(pending, replies, strict=True):
                if isinstance(reply, Exception):
                    log.warning("queue %s: could not read due periodic messages: %s", k.name, reply)
                    continue
                push = ticks(k, reply)
                now, next_ms = upcoming(reply)
                if push is not None:
                    pushes.append((k, push))
                elif next_ms != -1:
                    wake = next_ms - now
                    self._wake_ms = wake if self._wake_ms is None else min(self._wake_ms, wake)
            done = await scripts.batch([push for _, push in pushes]) if pushes else []
            pending = []
            for (k, _), reply in zip(pushes, done, strict=True):
                if isinstance(reply, Exception):
                    log.warning("queue %s: could not push due periodic messages: %s", k.name, reply)
                else:
                    pushed += int(reply)
                    pending.append(k)
        return pushed

    async def _run(self, interval: float = DEFAULT_INTERVAL) -> None:
        """Promote ticks until stopped: a pass every ``interval`` seconds, or sooner when
        an entry falls due before. Errors are logged and the next pass goes on."""
        if not isinstance(interval, int | float) or not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        while True:
            wait = interval
            try:
                await self._promote()
                self._retrying.ok()
                if self._wake_ms is not None:
                    wait = min(interval, self._wake_ms / 1000 + 0.002)
            except TRANSIENT as exc:
                wait = self._retrying.failed(exc)
            except Exception:
                log.exception("scheduler pass failed; going on")
            if await Pause(max(0.001, wait)):
                return


def _entry(
    name: str, queue: str, c: Cadence, payload: Any, due_ms: int | None, error: str | None = None
) -> ScheduleEntry:
    every = None if c.every_ms is None else c.every_ms / 1000
    return ScheduleEntry(name, queue, c.cron, c.tz, every, payload, due_ms or None, error)


class Schedule(ScheduleCore):
    """Periodic messages (the blocking API): ``add``, ``list``, ``remove``; ``run()``
    promotes ticks until ``stop()`` (what ``orizuru scheduler`` does), ``promote()``
    one pass. Workers and consumers promote ticks on their own as they beat."""

    _driver: Driver

    add = blocking(ScheduleCore._add)
    list = blocking(ScheduleCore._list)
    remove = blocking(ScheduleCore._remove)
    promote = blocking(ScheduleCore._promote)
    run = blocking(ScheduleCore._run)

    def stop(self) -> None:
        """End ``run()`` (from any thread) within a moment."""
        self._driver.closed.set()

    def start(self, interval: float = DEFAULT_INTERVAL) -> threading.Thread:
        """``run(interval)`` in a daemon thread; ``stop()`` ends it."""
        thread = threading.Thread(
            target=self.run, args=(interval,), name="orizuru-scheduler", daemon=True
        )
        thread.start()
        return thread
