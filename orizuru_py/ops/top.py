"""``orizuru top``: every queue and consumer on one screen, refreshed every second, on
rich's ``Live`` (extra ``top``). Fits 80x24: what does not fit is counted, not cut off
silently. ``q`` (or Ctrl-C) quits."""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..queue import Queue
from ..stats import SILENT, QueueStats
from .views import (
    CONSUMER_COLUMNS,
    OVERDUE,
    QUEUE_COLUMNS,
    Column,
    compact,
    consumer_rows,
    queue_row,
)

# What fits 80 columns: the queues' expired, oldest and paused columns go (a paused
# queue is marked on its name), and the rates' headers are shortened.
_QUEUE_SHOWN = ("queue", "waiting", "delayed", "in flight", "unacked", "dead", "live", "overdue",
                "acked/s", "failed/s")  # fmt: skip
_SHORT = {"acked/s": "ack/s", "failed/s": "fail/s"}
_NAMES = ("queue", "consumer")  # the columns that give way on a narrow terminal
_FIXED_LINES = 5  # title, blank, queues' header, blank, consumers' header


def _table(columns: Sequence[Column], rows: Sequence[Sequence[Text | str]], lines: int) -> Table:
    """The rows that fit in ``lines`` (the last one counting those left out). Only the
    names give way (with an ellipsis) when the terminal is narrow, never the counts."""
    shown = rows if len(rows) <= lines else rows[: max(0, lines - 1)]
    table = Table(box=None, padding=(0, 1), pad_edge=False, collapse_padding=True)
    for i, c in enumerate(columns):
        header = _SHORT.get(c.header, c.header)
        fixed = c.header not in _NAMES
        table.add_column(
            header,
            justify="right" if c.numeric else "left",
            no_wrap=fixed,  # rich narrows only columns that may wrap; names have no spaces
            overflow="ellipsis",
            header_style="bold",
            min_width=max([len(header), *(len(row[i]) for row in shown)]) if fixed else None,
        )
    for row in shown:
        table.add_row(*row)
    if len(shown) < len(rows):
        table.add_row(Text(f"... {len(rows) - len(shown)} more", "dim"))
    return table


def _pick(columns: Sequence[Column], shown: Sequence[str]) -> list[int]:
    return [i for i, c in enumerate(columns) if c.header in shown]


def _queues(stats: Sequence[QueueStats], lines: int) -> Table:
    keep = _pick(QUEUE_COLUMNS, _QUEUE_SHOWN)
    rows: list[list[Text | str]] = []
    for s in stats:
        cells = queue_row(s, compact)
        tags = ("[paused]" if s.paused else "") + ("[throttled]" if s.throttled else "")
        name = Text(s.queue + tags, "yellow" if tags else "")
        rows.append([name, *(cells[i] for i in keep[1:])])
    return _table([QUEUE_COLUMNS[i] for i in keep], rows, lines)


def _consumers(stats: Sequence[QueueStats], lines: int) -> Table | Text:
    rows = consumer_rows(stats, compact)
    if not rows:
        return Text("no consumers", "dim")
    styled = [[_styled(cell) for cell in row] for row in rows]
    return _table(CONSUMER_COLUMNS, styled, lines)


def _styled(cell: str) -> Text | str:
    """A consumer's state stands out: OVERDUE in red, silent in yellow."""
    if cell == OVERDUE:
        return Text(cell, "bold red")
    if cell.startswith(SILENT + " "):
        return Text(cell, "bold yellow")
    return cell


def frame(stats: Sequence[QueueStats], title: str, height: int) -> RenderableType:
    """One screen: a title line, the queues, their consumers, within ``height`` lines
    (the consumers get at most half of what is left while the queues need it)."""
    budget = max(2, height - _FIXED_LINES)
    consumers = sum(len(s.consumers) for s in stats)
    queue_lines = min(len(stats), max(1, budget - min(consumers, budget // 2)))
    queues = _queues(stats, queue_lines) if stats else Text("no queues yet", "dim")
    return Group(
        Text(title, "bold"),
        Text(""),
        queues,
        Text(""),
        _consumers(stats, budget - max(1, queue_lines)),
    )


@contextlib.contextmanager
def keys(stream: TextIO) -> Iterator[Callable[[float], str]]:
    """A function that waits up to its argument in seconds for keys and returns them
    (the terminal in cbreak mode meanwhile); it just sleeps where ``stream`` is no tty."""
    if not stream.isatty():

        def sleep(seconds: float) -> str:
            time.sleep(seconds)
            return ""

        yield sleep
        return
    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def wait(seconds: float) -> str:
        ready, _, _ = select.select([fd], [], [], seconds)
        return os.read(fd, 64).decode(errors="replace") if ready else ""

    try:
        yield wait
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def run(
    r: Any,
    where: str,
    prefix: str = "orizuru",
    names: Sequence[str] = (),
    interval: float = 1.0,
    console: Console | None = None,
) -> int:
    """Show ``names`` (every queue in the registry when empty) until ``q`` or Ctrl-C."""
    console = console or Console()
    r.ping()  # an unreachable server is a one-line error, before the screen switches
    try:
        with (
            Live(console=console, screen=True, auto_refresh=False) as live,
            keys(sys.stdin) as wait,
        ):
            while True:
                live.update(_view(r, where, prefix, names, console.size.height), refresh=True)
                if "q" in wait(interval).lower():
                    return 0
    except KeyboardInterrupt:
        return 0


def _view(r: Any, where: str, prefix: str, names: Sequence[str], height: int) -> RenderableType:
    title = f"orizuru top  {where}  prefix {prefix}  {time.strftime('%H:%M:%S')}  q quits"
    try:
        stats = Queue.stats_of(r, list(names) or Queue.all(r, prefix), prefix)
    except Exception as exc:  # the server went away: say so, and try again next time
        return Group(Text(title, "bold"), Text(f"cannot read the queues: {exc}", "red"))
    return frame(stats, title, height)
