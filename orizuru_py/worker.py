"""Worker: a thread pool that runs a function on every message of a queue.

One consumer feeds it. The calling thread fetches in batches, never having
more than ``concurrency + prefetch`` messages in hand (taken, not yet handled),
and fewer when the handler is slow (see ``_bound``); ``concurrency`` threads run
the handler on chunks of each batch, and one thread acks their successes in
batches while the next ones are fetched. A handler that
raises is retried after a backoff, and dead-lettered with the exception's text
once the message has been delivered ``max_attempts`` times. A garbage collector
runs alongside, so a deployment made only of workers recovers everything.

Stopping (``stop()``, or SIGINT/SIGTERM when ``run()`` is on the main thread):
take nothing more, hand unstarted messages back to the queue, let in-flight
handlers finish within ``drain_timeout`` and ack them, deregister. A second
signal stops at once: what is in flight stays in the processing list, and the
GC returns it once this worker's deadline passes.
"""

from __future__ import annotations

import logging
import math
import queue as _queue
import signal
import threading
import time
from collections.abc import Callable
from functools import partial
from types import FrameType
from typing import Any

from redis.exceptions import RedisError

from .backoff import Backoff, Exponential
from .codecs import Codec
from .collector import DEFAULT_MAX_ATTEMPTS, GarbageCollector
from .consumer import (
    DEFAULT_HEARTBEAT_TIMEOUT,
    MAX_BATCH,
    TRANSIENT,
    Consumer,
    check_heartbeat_timeout,
)
from .guard import MessageGuard

log = logging.getLogger("orizuru_py.worker")

Handler = Callable[[Any], Any]

DEFAULT_DRAIN_TIMEOUT = 30.0
DEFAULT_GC_INTERVAL = 5.0
_ACK_BATCH = 1000
_CHUNK_SECONDS = 0.001


def _check_count(name: str, value: object, least: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ValueError(f"{name} must be an int >= {least}, got {value!r}")


class Worker:
    """Runs ``handler(payload)`` (or ``handler(guard)`` with ``pass_guard=True``) on a queue."""

    def __init__(
        self,
        r: Any,
        queue: str,
        handler: Handler,
        *,
        concurrency: int = 8,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
        backoff: Backoff | None = None,
        prefetch: int | None = None,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
        gc_interval: float | None = DEFAULT_GC_INTERVAL,
        pass_guard: bool = False,
        codec: Codec | None = None,
        prefix: str = "orizuru",
        name: str | None = None,
    ) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {type(handler).__name__}")
        _check_count("concurrency", concurrency, 1)
        _check_count("max_attempts", max_attempts, 1)
        prefetch = 8 * concurrency if prefetch is None else prefetch
        _check_count("prefetch", prefetch, 0)
        check_heartbeat_timeout(heartbeat_timeout)
        if gc_interval is not None and not gc_interval > 0:
            raise ValueError(f"gc_interval must be None or positive, got {gc_interval!r}")
        self.handler = handler
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.backoff: Backoff = backoff or Exponential()
        self.prefetch = max(0, min(prefetch, MAX_BATCH - concurrency))
        self.drain_timeout = drain_timeout
        self.pass_guard = pass_guard
        self._consumer_args: dict[str, Any] = dict(
            name=name, heartbeat_timeout=heartbeat_timeout, codec=codec, prefix=prefix
        )
        self._r, self._queue = r, queue
        self._gc = GarbageCollector(r, queue, max_attempts=max_attempts, prefix=prefix)
        self._gc_interval = gc_interval
        self._stopping = threading.Event()
        self._aborted = threading.Event()
        self._started = False
        self._in_hand = 0
        # Running costs (s) of one handler call and of one fetch; unknown: assume slow.
        self._per_message = 1.0
        self._per_fetch = 0.001
        self._room = threading.Condition()
        # Guards travel in chunks: a queue operation per chunk, not per message.
        self._work: _queue.SimpleQueue[list[MessageGuard] | None] = _queue.SimpleQueue()
        self._acks: _queue.SimpleQueue[list[MessageGuard] | None] = _queue.SimpleQueue()
        self.consumer: Consumer | None = None

    def stop(self) -> None:
        """Stop gracefully; ``run()`` returns once in-flight messages are settled. Any thread."""
        self._stopping.set()
        with self._room:
            self._room.notify_all()

    def abort(self) -> None:
        """Stop at once, leaving in-flight messages for the GC (the second signal)."""
        self._aborted.set()
        self.stop()

    def run(self) -> None:
        """Process messages until stopped. Blocks; works from any thread."""
        if self._started:
            raise RuntimeError("a Worker runs once; make a new one")
        self._started = True
        restore = self._install_signals()
        try:
            self._run()
        finally:
            restore()

    def _run(self) -> None:
        self.consumer = consumer = Consumer(self._r, self._queue, **self._consumer_args)
        threads = [
            threading.Thread(target=self._work_loop, name=f"orizuru-worker-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        threads.append(threading.Thread(target=self._ack_loop, name="orizuru-acker", daemon=True))
        for t in threads:
            t.start()
        gc = self._gc.start(self._gc_interval) if self._gc_interval else None
        log.info("worker %s on queue %s: %d threads", consumer.name, self._queue, self.concurrency)
        try:
            self._fetch_loop(consumer)
        finally:
            if gc:
                gc[1].set()
            if not self._drain(consumer, threads):
                consumer.stop_heartbeat()
                log.warning(
                    "worker %s stopped at once; the GC will return its in-flight messages",
                    consumer.name,
                )

    # -- the fetching thread --------------------------------------------------------

    def _fetch_loop(self, consumer: Consumer) -> None:
        while not self._stopping.is_set():
            room = self._wait_for_room()
            if not room:
                return
            started = time.perf_counter()
            guards = consumer.next_batch(room, timeout=consumer.block)
            if len(guards) == room:  # the queue had enough: a fetch, not a wait
                spent = time.perf_counter() - started
                self._per_fetch += (spent - self._per_fetch) * 0.2
            if guards:
                with self._room:
                    self._in_hand += len(guards)
                chunks = self._chunks(len(guards))
                for i in range(chunks):
                    self._work.put(guards[i::chunks])

    def _chunks(self, n: int) -> int:
        """How many threads share a batch of n. Each hand-off costs a switch of the GIL,
        so a batch is split only as far as the handler's measured cost makes worth it:
        a chunk should take about ``_CHUNK_SECONDS``; a slow handler gets one thread per
        message (up to ``concurrency``), a no-op handler one thread per batch."""
        wanted = n * self._per_message / _CHUNK_SECONDS
        return max(1, min(self.concurrency, n, math.ceil(wanted)))

    def _bound(self) -> int:
        """Messages in hand to aim for: the threads' own, plus what they get through while
        one fetch is under way, at most ``prefetch``. A fast handler gets the whole
        prefetch; a slow one a message or so, so it does not hoard what others could take."""
        wanted = self.concurrency * self._per_fetch / max(self._per_message, 1e-9)
        return self.concurrency + max(min(self.prefetch, 1), min(self.prefetch, math.ceil(wanted)))

    def _wait_for_room(self) -> int:
        with self._room:
            while self._in_hand >= self._bound() and not self._stopping.is_set():
                self._room.wait()
            return 0 if self._stopping.is_set() else self._bound() - self._in_hand

    def _handled(self, n: int) -> None:
        """n messages left the workers' hands (handled, or handed back): room for more."""
        with self._room:
            self._in_hand -= n
            self._room.notify_all()

    def _drain(self, consumer: Consumer, threads: list[threading.Thread]) -> bool:
        """Hand back unstarted messages, let in-flight ones finish, deregister.
        False when aborted on the way (in-flight messages are left for the GC)."""
        if self._aborted.is_set():
            return False
        unstarted: list[MessageGuard] = []
        while True:
            try:
                chunk = self._work.get_nowait()
            except _queue.Empty:
                break
            unstarted.extend(chunk or ())
        if unstarted:
            self._retrying(partial(consumer.release, unstarted), unstarted, "hand back unstarted")
            self._handled(len(unstarted))
        for _ in range(self.concurrency):
            self._work.put(None)
        end = time.monotonic() + self.drain_timeout
        if not self._join(threads[:-1], end):
            return False
        self._acks.put(None)
        if not self._join(threads[-1:], end):
            return False
        consumer.close()
        log.info("worker %s stopped", consumer.name)
        return True

    def _join(self, threads: list[threading.Thread], end: float) -> bool:
        """Wait for ``threads`` until ``end``; False as soon as the worker is aborted."""
        for t in threads:
            while t.is_alive() and time.monotonic() < end:
                if self._aborted.wait(0.05):
                    return False
                t.join(0.05)
        return True

    # -- the handler threads ------------------------------------------------------------

    def _work_loop(self) -> None:
        get, handler, pass_guard = self._work.get, self.handler, self.pass_guard
        while (chunk := get()) is not None:
            done = []
            started = time.perf_counter()
            for guard in chunk:
                try:
                    handler(guard if pass_guard else guard.payload)
                except Exception as exc:
                    self._failed(guard, exc)
                    continue
                if not guard.settled:  # unless the handler settled it itself (pass_guard)
                    done.append(guard)
            if done:
                self._acks.put(done)
            # A rough running average is enough to size chunks; races lose nothing.
            spent = (time.perf_counter() - started) / len(chunk)
            self._per_message += (spent - self._per_message) * 0.2
            self._handled(len(chunk))

    def _failed(self, guard: MessageGuard, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        if guard.settled:
            log.error(
                "message %s attempt %d failed after settling: %s", guard.id, guard.attempts, reason
            )
        elif guard.attempts >= self.max_attempts:
            log.error(
                "message %s attempt %d/%d failed, dead-lettered: %s",
                guard.id,
                guard.attempts,
                self.max_attempts,
                reason,
            )
            self._retrying(partial(guard.dead_letter, reason), [guard], "dead-letter")
        else:
            delay = self.backoff(guard.attempts)
            log.warning(
                "message %s attempt %d/%d failed, retry in %.1f s: %s",
                guard.id,
                guard.attempts,
                self.max_attempts,
                delay,
                reason,
            )
            self._retrying(partial(guard.retry, delay), [guard], "retry")

    # -- the acking thread ----------------------------------------------------------------

    def _ack_loop(self) -> None:
        assert self.consumer is not None
        consumer, get, get_nowait = self.consumer, self._acks.get, self._acks.get_nowait
        last = False
        while not last:
            batch = get()
            if batch is None:
                return
            while len(batch) < _ACK_BATCH:
                try:
                    more = get_nowait()
                except _queue.Empty:
                    break
                if more is None:
                    last = True
                    break
                batch = batch + more
            self._retrying(partial(consumer.ack_many, batch), batch, "ack")

    def _retrying(self, action: Callable[[], Any], guards: list[MessageGuard], what: str) -> None:
        """Run a settling step, retrying connection errors with backoff until it succeeds,
        the worker is aborted, or the drain time after a stop runs out. Messages of a step
        given up on stay in the processing list, and the consumer hands them back."""
        assert self.consumer is not None
        pause, give_up = 0.05, None
        while True:
            try:
                action()
                return
            except TRANSIENT as exc:
                if self._stopping.is_set() and give_up is None:
                    give_up = time.monotonic() + self.drain_timeout
                if self._aborted.is_set() or (give_up is not None and time.monotonic() > give_up):
                    log.error("gave up trying to %s %d message(s): %s", what, len(guards), exc)
                    self.consumer.abandon(guards)
                    return
                log.warning(
                    "could not %s %d message(s) (%s); retrying in %.2f s",
                    what,
                    len(guards),
                    exc,
                    pause,
                )
                time.sleep(pause)
                pause = min(pause * 2, 2.0)
            except RedisError as exc:
                log.error("could not %s %d message(s): %s", what, len(guards), exc)
                self.consumer.abandon(guards)
                return

    # -- signals ----------------------------------------------------------------------

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if self._stopping.is_set():
                log.warning("second signal: stopping at once")
                self.abort()
            else:
                log.info("signal %d: stopping after in-flight messages", signum)
                self.stop()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for s, h in previous.items():
                signal.signal(s, h)

        return restore
