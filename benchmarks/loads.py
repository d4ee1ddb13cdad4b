"""The handlers of the rows where users live: jobs that wait (on the network, say) or
compute, as every queue here runs them. A job's duration follows from its message's
number, so every queue gets the same durations in the same order.

- ``sleep10``: waits 10 ms (``time.sleep``, or ``asyncio.sleep`` on asyncio).
- ``mixed``: waits 1 to 50 ms, message ``i`` ``1 + 37 i mod 50`` ms: every 50 messages
  in a row hold each of 1..50 ms once (mean 25.5 ms), long and short interleaved.
- ``cpu1``: computes for 1 ms of its thread's CPU time (it spins until its thread has
  used 1 ms), so its cost does not grow on a loaded machine; only wall time does.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import attrs


def _number(payload: Any) -> int:
    """The message's number: ``orizuru_py.ops.bench.message(i)`` carries it as ``n``."""
    return int(payload["n"])


@attrs.frozen
class Load:
    """A handler profile: its name on the command line, its label in tables, and the mean
    seconds of one job (of wall time for a job that waits, of CPU for one that computes)."""

    name: str
    label: str
    mean_s: float
    cpu: bool = False

    def seconds(self, payload: Any) -> float:
        """How long the job of ``payload`` takes."""
        if self.name == "mixed":
            return (1 + 37 * _number(payload) % 50) / 1000
        return self.mean_s

    def run(self, payload: Any) -> None:
        """The blocking job."""
        if not self.mean_s:
            return
        if self.cpu:
            spin(self.seconds(payload))
        else:
            time.sleep(self.seconds(payload))

    async def arun(self, payload: Any) -> None:
        """The asyncio job (a job that waits; computing would block the loop)."""
        if self.mean_s:
            await asyncio.sleep(self.seconds(payload))


def spin(seconds: float) -> None:
    """Compute in Python until this thread has used ``seconds`` of CPU."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


NOOP = Load("noop", "no-op", 0.0)
SLEEP_10MS = Load("sleep10", "10 ms sleep", 0.010)
MIXED = Load("mixed", "1-50 ms sleep", 0.0255)
CPU_1MS = Load("cpu1", "1 ms of CPU", 0.001, cpu=True)
LOADS = {load.name: load for load in (NOOP, SLEEP_10MS, MIXED, CPU_1MS)}


def cpu_job(payload: Any) -> None:
    """``CPU_1MS`` as a module-level function, for ``orizuru worker loads:cpu_job``."""
    CPU_1MS.run(payload)
