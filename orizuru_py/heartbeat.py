"""Heartbeat: keeps a consumer registered as alive, and promotes due delayed messages.

A background thread re-registers the consumer every ``tick`` seconds with a
deadline ``heartbeat_timeout`` ahead on the server clock. A slow handler never
stops the beat, so only a consumer that is dead (or frozen past its deadline)
is reaped by the GC.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from . import scripts
from .keys import QueueKeys

log = logging.getLogger("orizuru_py.heartbeat")

PROMOTE_BATCH = 1000


class Heartbeat:
    """The beat of one consumer; ``on_fresh`` is told when the server did not know it."""

    def __init__(
        self,
        r: Any,
        keys: QueueKeys,
        name: str,
        timeout_ms: int,
        tick: float,
        on_fresh: Callable[[], None],
    ) -> None:
        self.r, self.keys, self.name = r, keys, name
        self.timeout_ms, self.tick, self.on_fresh = timeout_ms, tick, on_fresh
        self._stop = threading.Event()
        self._clock = (0, 0.0)  # (server ms, monotonic s) at the last beat
        self._thread = threading.Thread(
            target=self._run, name=f"orizuru-heartbeat-{name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def beat(self) -> None:
        """Register once and promote due delayed messages, in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        pipe.execute_command(
            *scripts.REGISTER.args((self.keys.consumers,), (self.name, self.timeout_ms))
        )
        pipe.execute_command(
            *scripts.PROMOTE.args((self.keys.delayed, self.keys.queue), (PROMOTE_BATCH,))
        )
        sent = time.monotonic()
        try:
            (fresh, server_ms), _ = pipe.execute()
        except NoScriptError:
            scripts.REGISTER.load(self.r)
            scripts.PROMOTE.load(self.r)
            return self.beat()
        self._clock = (int(server_ms), sent)
        if fresh:
            self.on_fresh()

    def deadline_ms(self) -> int:
        """A deadline ``timeout`` ahead on the server's clock, as last read and advanced by
        ours since (taken from when the beat was sent: a little late, never early)."""
        server_ms, at = self._clock
        return server_ms + int((time.monotonic() - at) * 1000) + self.timeout_ms

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.beat()
            except (RedisError, RedisClusterException) as exc:
                log.warning("heartbeat of consumer %s failed: %s", self.name, exc)
            except Exception:
                log.exception("heartbeat of consumer %s failed", self.name)
