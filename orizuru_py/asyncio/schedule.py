"""Schedule for asyncio: the blocking Schedule's plans (orizuru_py.schedule), awaited."""

from __future__ import annotations

import asyncio

from ..plan import awaiting
from ..schedule import DEFAULT_INTERVAL, ScheduleCore
from .driver import AsyncDriver


class Schedule(ScheduleCore):
    """Periodic messages (``await sched.add(...)``); ``run()`` promotes ticks until
    ``stop()``, ``promote()`` one pass."""

    driver_class = AsyncDriver
    _driver: AsyncDriver

    add = awaiting(ScheduleCore._add)
    list = awaiting(ScheduleCore._list)
    remove = awaiting(ScheduleCore._remove)
    promote = awaiting(ScheduleCore._promote)
    run = awaiting(ScheduleCore._run)

    def stop(self) -> None:
        """End ``run()`` within a moment."""
        self._driver.closed.set()

    def start(self, interval: float = DEFAULT_INTERVAL) -> asyncio.Task[None]:
        """``run(interval)`` as a task; ``stop()`` ends it."""
        return asyncio.get_running_loop().create_task(self.run(interval), name="orizuru-scheduler")
