"""The tracing hook: None until ``orizuru_py.otel.instrument()`` sets it.

The core reads ``hook`` once per push and per handler run (an attribute read) and,
while it is None, does nothing more: without tracing nothing is added to a message's
path. This module imports no tracing library (``orizuru_py.otel`` implements
``Tracing`` with OpenTelemetry's API, an optional extra) and nothing of the package,
so every module may read it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Delivered(Protocol):
    """What a span needs of a delivered message (a guard)."""

    @property
    def queue(self) -> str: ...

    id: str
    raw: bytes
    attempts: int
    payload: Any


class Tracing(Protocol):
    """Spans around a message's steps."""

    def send(
        self,
        queue: str,
        count: int | None,
        plan: Callable[[bytes | None], Coroutine[Any, Any, T]],
    ) -> Coroutine[Any, Any, T]:
        """Run the plan of a push (``count`` None) or a push_many of ``count`` messages
        inside a ``send`` span; the plan gets the trace context each message carries."""
        ...

    def process(self, handler: Callable[[Any], Any], guard: Delivered, pass_guard: bool) -> Any:
        """Call a Worker's blocking handler on ``guard`` inside a ``process`` span."""
        ...

    def process_async(
        self, handler: Callable[[Any], Awaitable[Any]], guard: Delivered, pass_guard: bool
    ) -> Awaitable[Any]:
        """Await a Worker's async handler on ``guard`` inside a ``process`` span."""
        ...

    def enter(self, guard: Delivered) -> Any:
        """Open a ``process`` span around a ``with guard:`` block (made current)."""
        ...

    def exit(self, opened: Any, exc: BaseException | None) -> None:
        """Close what ``enter`` opened, recording ``exc`` if the block raised."""
        ...

    def retried(self, guard: Delivered, delay: float) -> None:
        """Record that ``guard``'s message comes back after ``delay`` seconds."""
        ...

    def dead_lettered(self, guard: Delivered, reason: str) -> None:
        """Record that ``guard``'s message went to the dead-letter list."""
        ...


hook: Tracing | None = None
