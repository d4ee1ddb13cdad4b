"""``orizuru top``: the real program in a pseudo-terminal of 80x24, read back through
pyte (a terminal emulator), and its frame laid out for small screens."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyte
import pytest
import redis
from rich.console import Console

from orizuru_py import Consumer, Producer, Queue
from orizuru_py.keys import QueueKeys
from orizuru_py.ops import top, views

ROOT = Path(__file__).resolve().parent.parent
COLUMNS, LINES = 80, 24


class Terminal:
    """A program on a pty of COLUMNS x LINES, its screen as pyte renders it."""

    def __init__(self, argv: list[str]) -> None:
        self.screen = pyte.Screen(COLUMNS, LINES)
        self.stream = pyte.ByteStream(self.screen)
        self.fd, child = pty.openpty()
        fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(LINES)}
        self.process = subprocess.Popen(
            argv, stdin=child, stdout=child, stderr=child, cwd=ROOT, env=env, start_new_session=True
        )
        os.close(child)

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def wait_for(self, check: Callable[[list[str]], bool], timeout: float = 15.0) -> list[str]:
        """Read output until the screen passes ``check``; the screen."""
        end = time.monotonic() + timeout
        while not check(self.lines()):
            if time.monotonic() > end:
                raise AssertionError("screen never matched:\n" + "\n".join(self.lines()))
            if select.select([self.fd], [], [], 0.1)[0]:
                try:
                    self.stream.feed(os.read(self.fd, 65536))
                except OSError:  # the program ended
                    break
        return self.lines()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        os.close(self.fd)


@pytest.fixture
def terminal() -> Iterator[Callable[..., Terminal]]:
    opened: list[Terminal] = []

    def open_(*args: str) -> Terminal:
        opened.append(Terminal([sys.executable, "-m", "orizuru_py", *args]))
        return opened[-1]

    yield open_
    for t in opened:
        t.close()


def row_of(lines: list[str], queue: str) -> list[str]:
    """The cells of ``queue``'s row in the queues table ([] while it is not shown)."""
    for line in lines:
        cells = line.split()
        if cells and cells[0] == queue:
            return cells
    return []


def test_top_refreshes_a_queues_counts_and_quits_on_q(
    terminal: Callable[..., Terminal], r: redis.Redis, redis_url: str, queue: str
) -> None:
    queue = queue[-10:]  # a name that fits its column on 80 columns
    Producer(r, queue).push_many(range(3))
    t = terminal("--redis-url", redis_url, "top", queue)
    first = t.wait_for(lambda lines: row_of(lines, queue)[1:2] == ["3"])
    assert first[0].startswith("orizuru top") and "q quits" in first[0]
    assert first[2].split()[:4] == ["queue", "waiting", "delayed", "in"]
    Producer(r, queue).push_many(range(4))
    consumer = Consumer(r, queue)
    assert len(consumer.next_batch(2, timeout=1)) == 2
    later = t.wait_for(lambda lines: row_of(lines, queue)[1:4] == ["5", "0", "2"])
    assert any(consumer.id in line and "live" in line for line in later)
    consumer.close()
    os.write(t.fd, b"q")
    assert t.process.wait(10) == 0
    r.delete(QueueKeys(queue).queue)


def test_a_frame_fits_24_lines_and_counts_what_it_leaves_out(r: redis.Redis, queue: str) -> None:
    names = [f"{queue}-{i:02d}" for i in range(30)]
    for name in names:
        Producer(r, name).push_many(range(20))
    consumers = [Consumer(r, names[0]) for _ in range(20)]
    for c in consumers:
        assert c.next(timeout=1) is not None
    stats = Queue.stats_of(r, names)
    console = Console(width=COLUMNS, height=LINES, record=True, color_system=None)
    console.print(top.frame(stats, "title", LINES))
    text = console.export_text().rstrip("\n").splitlines()
    for c in consumers:
        c.close()
    assert len(text) == LINES
    assert max(len(line) for line in text) <= COLUMNS
    assert [line.split()[:2] for line in text if line.startswith("...")] == [
        ["...", str(30 - 9)],
        ["...", str(20 - 8)],
    ]
    for name in names:
        r.delete(QueueKeys(name).queue)


def test_stats_and_top_say_silent_before_overdue_and_escape_names(
    r: redis.Redis, queue: str
) -> None:
    Producer(r, queue).push(1)
    quiet = Consumer(r, queue, name="quiet", heartbeat_timeout=30.0)
    assert quiet.next(timeout=1) is not None
    quiet.stop_heartbeat()
    r.zadd(QueueKeys(queue).consumers, {"\x1b[2Jevil@1": time.time() * 1000 - 1000})
    time.sleep(1.2)  # two beats of 0.5 s missed, 29 s before its deadline
    stats = Queue.stats_of(r, [queue])
    text = views.stats_text(stats)
    (line,) = [line for line in text.splitlines() if quiet.id in line]
    assert "silent 1." in line and "OVERDUE" not in line
    assert "\x1b" not in text and "\\x1b[2Jevil@1" in text and "OVERDUE" in text
    console = Console(width=COLUMNS, height=LINES, record=True, color_system=None)
    console.print(top.frame(stats, "title", LINES))
    assert "silent 1." in console.export_text()
    quiet.close()
    r.delete(QueueKeys(queue).consumers)
    Queue(r, queue).purge()
