"""What ``orizuru stats`` and ``orizuru top`` show of queues and consumers: the columns,
defined once, and a plain-text rendering (``top`` renders the same cells with rich)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from ..peeking import Peeked
from ..schedule import ScheduleEntry
from ..stats import SILENT, ConsumerStats, QueueStats

Number = Callable[[int], str]


@attrs.frozen
class Column:
    """A header, and whether its cells are numbers (right-aligned)."""

    header: str
    numeric: bool = True


QUEUE_COLUMNS = tuple(
    Column(h, n)
    for h, n in (
        ("queue", False),
        ("waiting", True),
        ("delayed", True),
        ("in flight", True),
        ("unacked", True),
        ("dead", True),
        ("expired", True),
        ("paused", False),
        ("live", True),
        ("overdue", True),
        ("oldest", True),
        ("acked/s", True),
        ("failed/s", True),
    )
)
CONSUMER_COLUMNS = tuple(
    Column(h, n)
    for h, n in (
        ("queue", False),
        ("consumer", False),
        ("held", True),
        ("last beat", True),
        ("state", False),
        ("handled", True),
        ("failed", True),
        ("acked/s", True),
        ("failed/s", True),
    )
)
SCHEDULE_COLUMNS = tuple(
    Column(h, n)
    for h, n in (("entry", False), ("queue", False), ("cadence", False), ("next due", True))
)
THROTTLED_COLUMNS = tuple(
    Column(h, n) for h, n in (("queue", False), ("throttled limiter", False), ("frees in", True))
)
OVERDUE = "OVERDUE"
MAX_PAYLOAD_TEXT = 60  # characters of a periodic entry's payload in a table


def age(seconds: float | None) -> str:
    """1.2s, 3m05s, 2h10m; ``-`` for none."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m{int(seconds % 60):02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def printable(text: str) -> str:
    """``text`` with every control character escaped: what a pusher wrote (ids, names,
    reasons) never moves the cursor or recolours the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def payload_text(m: Peeked, render: Callable[[Any], str] = repr) -> str:
    """``render(payload)``, or the bytes read where it did not decode or was cut. Never
    raises: a payload nested too deep for ``render`` shows its bytes, and says so."""
    if m.truncated:
        return repr(m.head)
    if m.error is not None:
        return repr(m.raw)
    try:
        return render(m.payload)
    except (RecursionError, ValueError, TypeError) as exc:
        return f"<cannot show it as text ({type(exc).__name__}); the stored bytes:> {m.raw!r}"


def state(c: ConsumerStats) -> str:
    """live, ``silent 1.5s`` (it missed two beats), or OVERDUE (past its deadline)."""
    if c.state == SILENT:
        return f"silent {age(c.last_beat_s)}"
    return OVERDUE if c.overdue else "live"


def compact(n: int) -> str:
    """A count in at most 5 characters: 12345, 123k, 12.3M, 123M."""
    if n < 100_000:
        return str(n)
    if n < 1_000_000:
        return f"{n // 1000}k"
    if n < 100_000_000:
        return f"{n / 1_000_000:.1f}M"
    return f"{n // 1_000_000}M"


def queue_row(s: QueueStats, number: Number = str) -> list[str]:
    overdue = len(s.consumers) - s.live_consumers
    counts = (s.waiting, s.delayed, s.in_flight, s.unacked, s.dead, s.expired)
    return [
        s.queue,
        *(number(n) for n in counts),
        "yes" if s.paused else "no",
        str(s.live_consumers),
        str(overdue),
        age(s.oldest_waiting_s),
        f"{s.acked_per_s:.1f}",
        f"{s.failed_per_s:.1f}",
    ]


def consumer_row(queue: str, c: ConsumerStats, number: Number = str) -> list[str]:
    return [
        queue,
        printable(c.name),
        str(c.held),
        age(c.last_beat_s),
        state(c),
        number(c.handled),
        number(c.failed),
        f"{c.acked_per_s:.1f}",
        f"{c.failed_per_s:.1f}",
    ]


def consumer_rows(stats: Sequence[QueueStats], number: Number = str) -> list[list[str]]:
    """Every consumer of ``stats``, by queue, the overdue then silent ones first (they
    need a look)."""
    return [
        consumer_row(s.queue, c, number)
        for s in stats
        for c in sorted(s.consumers, key=lambda c: (not c.overdue, c.state != SILENT, c.name))
    ]


def text_table(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns, two spaces apart: readable, and easy for ``awk``."""
    widths = [max([len(c.header), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(w) if c.numeric else cell.ljust(w)
            for c, cell, w in zip(columns, cells, widths, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line([c.header for c in columns]), *(line(r) for r in rows)])


def due_text(due_ms: int | None, now_ms: int) -> str:
    """``in 3.2s``; ``late 12.0s`` when nothing has pushed it yet (no worker or scheduler
    runs for its queue?); ``-`` for none."""
    if due_ms is None:
        return "-"
    if due_ms >= now_ms:
        return f"in {age((due_ms - now_ms) / 1000)}"
    return f"late {age((now_ms - due_ms) / 1000)}"


def schedule_row(e: ScheduleEntry, now_ms: int, payloads: bool = False) -> list[str]:
    """A periodic entry; its problem, if any, after its last cell."""
    row = [
        printable(e.name),
        printable(e.queue),
        printable(e.cadence),
        due_text(e.next_due_ms, now_ms),
    ]
    if payloads:
        text = payload_text(Peeked(None, None, None, e.payload, b""))
        row.append(
            printable(text[:MAX_PAYLOAD_TEXT] + ("..." if len(text) > MAX_PAYLOAD_TEXT else ""))
        )
    if e.error is not None:
        row[-1] += f"  [{printable(e.error)}]"
    return row


def schedule_text(entries: Sequence[ScheduleEntry], now_ms: int, payloads: bool = False) -> str:
    columns = SCHEDULE_COLUMNS + ((Column("payload", False),) if payloads else ())
    return text_table(columns, [schedule_row(e, now_ms, payloads) for e in entries])


def stats_text(
    stats: Sequence[QueueStats], entries: Sequence[ScheduleEntry] = (), now_ms: int = 0
) -> str:
    """The ``orizuru stats`` report: the queues, their consumers, the periodic entries."""
    if not stats:
        return "no queues (the registry is empty: nothing has been pushed or taken yet)"
    parts = [text_table(QUEUE_COLUMNS, [queue_row(s) for s in stats]), ""]
    consumers = consumer_rows(stats)
    if consumers:
        parts.append(text_table(CONSUMER_COLUMNS, consumers))
    else:
        parts.append("no consumers")
    throttled = throttled_rows(stats)
    if throttled:
        parts += ["", text_table(THROTTLED_COLUMNS, throttled)]
    if entries:
        parts += ["", schedule_text(entries, now_ms)]
    return "\n".join(parts)


def limiter(name: str) -> str:
    """A rate limiter as shown: its key (escaped), or "(the queue's)"."""
    return printable(name) if name else "(the queue's)"


def throttled_rows(stats: Sequence[QueueStats]) -> list[list[str]]:
    """The rate limiters holding starts back, the longest wait first."""
    return [
        [s.queue, limiter(name), age(left)]
        for s in stats
        for name, left in sorted(s.throttled.items(), key=lambda item: -item[1])
    ]
