"""Observer: how an application (or the Prometheus exporter) sees each outcome.

Subclass it and override what you need; every method is a no-op here. A Worker
calls them from its handler threads (or tasks), so keep them quick and thread
safe. A Worker given no observer makes no calls at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .collector import CollectReport


class Observer:
    """Callbacks for what a Worker does with each message."""

    def started(self, queue: str, message_id: str) -> None:
        """A handler is about to run on a message."""

    def acked(self, queue: str, message_id: str, seconds: float) -> None:
        """A message was handled (the handler took ``seconds``) and acknowledged."""

    def failed(
        self,
        queue: str,
        message_id: str,
        attempt: int,
        exc: BaseException,
        retry_in: float | None,
    ) -> None:
        """A handler raised; the message comes back in ``retry_in`` seconds, or, with
        ``retry_in`` None, it was dead-lettered (``dead_lettered`` follows)."""

    def dead_lettered(self, queue: str, message_id: str, reason: str) -> None:
        """A message went to the dead-letter list."""

    def recovered(self, queue: str, report: CollectReport) -> None:
        """The worker's garbage collector moved messages (a dead consumer's, rejected
        ones, due delayed ones)."""
