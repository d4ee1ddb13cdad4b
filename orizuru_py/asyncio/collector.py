"""GarbageCollector for asyncio: the blocking one's plans (orizuru_py.collector), awaited."""

from __future__ import annotations

import asyncio

from ..collector import GarbageCollectorCore
from ..plan import awaiting
from .driver import AsyncDriver


class GarbageCollector(GarbageCollectorCore):
    """Recovers one queue's unsettled messages (``await collect()``)."""

    driver_class = AsyncDriver
    _driver: AsyncDriver

    collect = awaiting(GarbageCollectorCore._collect)
    run = awaiting(GarbageCollectorCore._run)

    def stop(self) -> None:
        """End ``run()`` within a moment."""
        self._driver.closed.set()

    def start(self, interval: float) -> asyncio.Task[None]:
        """``run(interval)`` as a task; ``stop()`` ends it."""
        return asyncio.get_running_loop().create_task(
            self.run(interval), name=f"orizuru-gc-{self.keys.name}"
        )
