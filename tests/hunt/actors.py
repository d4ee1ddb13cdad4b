"""What the hunter drives: an asyncio loop in a thread, consumers of both APIs (each on
its own named client, so one can be cut with CLIENT KILL), Workers of both APIs, and a
consumer process to SIGKILL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import redis
import redis.asyncio

import orizuru_py
import orizuru_py.asyncio as aoz
from orizuru_py.reconcile import reconcile

from .book import Book
from .invariants import Live

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
WAIT = 60.0  # generous: a loaded machine is slow, never wrong


class Loop:
    """An asyncio event loop in a daemon thread; ``run`` waits for a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="hunt-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = WAIT) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], Awaitable[T]], timeout: float = WAIT) -> T:
        """Call ``fn`` on the loop, its synchronous part too (``close()`` takes effect when
        called, on the loop's objects: never from this thread), and await what it gives."""

        async def called() -> T:
            return await fn()

        return self.run(called(), timeout)

    def freeze(self, seconds: float) -> None:
        """Block the loop for ``seconds`` (a GIL-starved or stopped process), from now on."""
        begun = threading.Event()

        def block() -> None:
            begun.set()
            time.sleep(seconds)

        self.loop.call_soon_threadsafe(block)
        begun.wait(WAIT)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


SWALLOWED: list[str] = []  # calls that ended normally though cancelled while running


async def cancel_after(make: Callable[[], Awaitable[T]], turns: int) -> tuple[bool, T | None]:
    """Run what ``make()`` gives (called here, on the loop) and cancel it after ``turns``
    passes of the loop (if not done by then): (True, result) when it finished, (False,
    None) when the cancellation took. A call that was cancelled while running and still
    returned normally swallowed the cancellation: it is noted in SWALLOWED."""
    work = make()
    name = getattr(work, "__qualname__", repr(work))
    task = asyncio.ensure_future(work)
    for _ in range(turns):
        if task.done():
            break
        await asyncio.sleep(0)
    running = not task.done()
    task.cancel()
    try:
        result = await task
    except asyncio.CancelledError:
        return False, None
    if running:
        SWALLOWED.append(name)
    return True, result


class Slot:
    """One consumer a step drives, and the guards the application (the hunter) holds."""

    def __init__(self, name: str, url: str, queue: str, hbt: float, most: int, loop: Loop):
        self.name, self.loop, self.is_async = name, loop, name.startswith("a")
        self.guards: list[Any] = []
        self.freezes = 0  # times it was frozen past its deadline: it may find itself reaped
        self.heartless = False  # its heartbeat stopped, it goes on: it may be reaped any time
        if self.is_async:
            self.aclient = redis.asyncio.Redis.from_url(url, client_name=name)

            async def make() -> aoz.Consumer:
                return aoz.Consumer(self.aclient, queue, name=name, heartbeat_timeout=hbt,
                                    max_attempts=most)  # fmt: skip

            self.consumer: Any = loop.run(make())
        else:
            self.client = redis.Redis.from_url(url, client_name=name)
            self.consumer = orizuru_py.Consumer(
                self.client, queue, name=name, heartbeat_timeout=hbt, max_attempts=most
            )

    def call(self, fn: Callable[[], Any], turns: int | None = None) -> tuple[bool, Any]:
        """Run a consumer or guard method; on the asyncio API, cancelled after ``turns``
        loop passes when given. (True, result), or (False, None) when cancelled."""
        if not self.is_async:
            return True, fn()
        if turns is None:
            return True, self.loop.call(fn)
        return self.loop.run(cancel_after(fn, turns))

    def reconcile(self) -> None:
        """One reconcile, when the consumer knows its lists may hold what it does not know."""
        c = self.consumer
        if not (c._started and c.held.stale):
            return
        if self.is_async:
            self.loop.run(c._driver.run(reconcile(c.held)))
        else:
            c._driver.run(reconcile(c.held))

    def live(self) -> Live:
        c, alive = self.consumer, not self.heartless
        return Live(self.name, c.id, c._started and alive,
                    c.held.epoch > self.freezes and alive,
                    Counter(c.held.copies()), Counter(g.raw for g in self.guards))  # fmt: skip

    def stop_heartbeat(self) -> None:
        if self.is_async:
            self.loop.call(self.consumer.stop_heartbeat)
        else:
            self.consumer.stop_heartbeat()

    def drop(self) -> None:
        """The process died: its connections go, its guards with it."""
        self.guards.clear()
        if self.is_async:
            self.loop.run(self.aclient.aclose())
        else:
            self.client.close()


class WorkerSlot:
    """A Worker of either API whose handler records each delivery; a payload's ``f``
    says how many of its first attempts fail, ``h`` how the handler settles it itself,
    ``s`` how long the handler works."""

    def __init__(
        self, name: str, url: str, queue: str, side: str, book: Book, loop: Loop, **kw: Any
    ):
        self.name, self.book, self.loop, self.side = name, book, loop, side
        self.is_async = name.endswith("a")
        self.errors: list[BaseException] = []
        self.freezes = 0
        options = dict(name=name, pass_guard=True, backoff=lambda attempt: 0.05, **kw)
        if self.is_async:
            self.aclient = redis.asyncio.Redis.from_url(url, client_name=name)

            async def start() -> tuple[aoz.Worker, asyncio.Task[None]]:
                worker = aoz.Worker(self.aclient, queue, self.ahandle, **options)
                return worker, asyncio.get_running_loop().create_task(self._arun(worker))

            self.worker: Any
            self.worker, self.task = loop.run(start())
        else:
            self.client = redis.Redis.from_url(url, client_name=name)
            self.worker = orizuru_py.Worker(self.client, queue, self.handle, **options)
            self.thread = threading.Thread(target=self._run, name=name, daemon=True)
            self.thread.start()

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as exc:
            self.errors.append(exc)

    async def _arun(self, worker: aoz.Worker) -> None:
        try:
            await worker.run()
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            self.errors.append(exc)

    def _begin(self, guard: Any) -> tuple[bool, str, float]:
        """Record the delivery; whether this attempt fails, how the handler settles the
        message itself (payload ``h``: ""; or push, dead, reject, retry, ack), and how
        long it works first (payload ``s``, seconds: past a time limit, say)."""
        p = guard.payload
        self.book.delivered(guard.id, guard.attempts, self.name, p.get("n"))
        how = p.get("h", "")
        if how == "retry" and guard.attempts >= self.book.max_attempts:
            how = "reject"  # a retry at the last attempt is a known defect (test_found.py)
        return bool(guard.attempts <= int(p.get("f", 0))), how, float(p.get("s", 0))

    def _settles(self, guard: Any, how: str) -> Any:
        return {"push": lambda: guard.push(self.side), "dead": guard.dead_letter,
                "reject": guard.reject, "retry": lambda: guard.retry(0.05),
                "ack": guard.ack}[how]()  # fmt: skip

    def handle(self, guard: Any) -> None:
        fails, how, work = self._begin(guard)
        time.sleep(work)
        if fails:
            raise RuntimeError("a planned failure")
        if how == "ack":
            self.book.maybe_ack(guard.id)  # cut short (a time limit), it may still land
        if how and self._settles(guard, how) and how == "ack":
            self.book.ack(guard.id)
        if how in ("", "ack"):
            self.book.finished(guard.id)

    async def ahandle(self, guard: Any) -> None:
        fails, how, work = self._begin(guard)
        await asyncio.sleep(work)
        if fails:
            raise RuntimeError("a planned failure")
        if how == "ack":
            self.book.maybe_ack(guard.id)  # cut short (a time limit), it may still land
        if how and await self._settles(guard, how) and how == "ack":
            self.book.ack(guard.id)
        if how in ("", "ack"):
            self.book.finished(guard.id)

    def lives(self) -> list[Live]:
        return [
            Live(self.name, c.id, c._started, c.held.epoch > self.freezes)
            for c in self.worker.consumers
        ]

    def stop(self, how: int) -> str:
        """0: stop() (graceful), 1: abort(), 2: cancel run()'s task (asyncio; else stop)."""
        w = self.worker
        if self.is_async:
            task = self.task
            action = task.cancel if how == 2 else (w.stop if how == 0 else w.abort)
            self.loop.loop.call_soon_threadsafe(action)
            self.loop.run(asyncio.wait({task}, timeout=WAIT))
            if not task.done():
                raise AssertionError(f"worker {self.name} did not stop within {WAIT} s")
            self.loop.run(self.aclient.aclose())
        else:
            w.stop() if how != 1 else w.abort()
            self.thread.join(WAIT)
            if self.thread.is_alive():
                raise AssertionError(f"worker {self.name} did not stop within {WAIT} s")
            self.client.close()
        return ["stopped", "aborted", "cancelled"][how] + (
            f" error {self.errors}" * bool(self.errors)
        )


def sigkill_child(url: str, queue: str, hbt: float, most: int) -> tuple[str, str, int]:
    """Start a consumer process, let it take one message, SIGKILL it. Returns (what it
    printed: "none" or "ID ATTEMPTS", its consumer id, its pid)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.hunt.child", url, queue, str(hbt), str(most)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    timer = threading.Timer(WAIT, proc.kill)
    timer.start()
    try:
        line = proc.stdout.readline().decode().split()
    finally:
        proc.kill()
        proc.wait()
        timer.cancel()
        proc.stdout.close()
    if not line:
        return "died", "", proc.pid
    return " ".join(line[:-1]), line[-1], proc.pid
