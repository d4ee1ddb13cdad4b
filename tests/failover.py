"""The failover scenario, shared by tests/test_failover.py (small) and
benchmarks/reliability.py (big).

A primary, a replica and three sentinels. A producer pushes one message at a time
through Sentinel, with producer confirms (``replicas``) or without; two workers (one
blocking, one asyncio, each its own process) consume through Sentinel and record what
they handle on another server. Mid-stream the primary is SIGKILLed (or first its
replica is frozen, to make it lag as a slow network would); the sentinels promote the
replica; the old primary is restarted and rejoins as a replica. Then every push that
returned must be handled: its figures say how many were not.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import redis

from orizuru_py import NotConfirmed, Producer, Queue
from tests.servers import SentinelGroup
from tests.support import wait_for

ROOT = Path(__file__).resolve().parent.parent


def _worker(group: SentinelGroup, queue: str, ledger_url: str, mode: str, log: Path) -> Any:
    sentinels = ",".join(f"{h}:{p}" for h, p in group.sentinel_addresses)
    argv = [sys.executable, "-m", "tests.sentinel_child", sentinels, group.master_name, queue,
            ledger_url, mode]  # fmt: skip
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log.open("ab"))


class _Pusher(threading.Thread):
    """Pushes through Sentinel, ``batch`` messages a call (``push_many`` beyond one) of
    ``pad`` bytes of padding each, and sorts each push's outcome."""

    def __init__(
        self, group: SentinelGroup, queue: str, replicas: int, count: int, batch: int, pad: int
    ) -> None:
        super().__init__(daemon=True)
        client = group.master_for(socket_timeout=1.0)
        self.producer = Producer(client, queue, replicas=replicas, confirm_timeout=0.5)
        self.count = count
        self.batch = batch
        self.pad = "x" * pad
        self.returned: list[str] = []  # acknowledged (and confirmed, with replicas)
        self.unconfirmed: list[str] = []  # NotConfirmed: may or may not be queued
        self.errors = 0  # a connection error: may or may not be queued
        self.started = threading.Event()

    def run(self) -> None:
        for first in range(0, self.count, self.batch):
            payloads = [{"n": i, "pad": self.pad} for i in range(first, first + self.batch)]
            try:
                if self.batch == 1:
                    self.returned.append(self.producer.push(payloads[0]))
                else:
                    self.returned += self.producer.push_many(payloads)
            except NotConfirmed as exc:
                self.unconfirmed += exc.ids
            except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError):
                self.errors += len(payloads)
                time.sleep(0.05)
            if first <= self.count // 4 < first + self.batch:
                self.started.set()
            time.sleep(0.002)
        self.started.set()


def failover(
    ledger_url: str,
    workdir: Path,
    *,
    messages: int,
    replicas: int,
    lagging: float = 0.0,
    batch: int = 1,
    pad: int = 0,
) -> dict[str, Any]:
    """Run the scenario; ``lagging`` s of the replica frozen just before the kill (with
    big batches, enough to outgrow the kernel's socket buffers: the writes the primary
    still holds are what a failover loses)."""
    ledger = redis.Redis.from_url(ledger_url)
    queue = f"failover-{os.urandom(4).hex()}"
    handled_key = f"{queue}:handled"
    log = workdir / f"{queue}.log"
    with SentinelGroup() as group:
        workers = [_worker(group, queue, ledger_url, mode, log) for mode in ("blocking", "asyncio")]
        try:
            pusher = _Pusher(group, queue, replicas, messages, batch, pad)
            start = time.monotonic()
            pusher.start()
            pusher.started.wait(60)
            replica = next(n for n in group._nodes.values() if n.port != group.primary_address()[1])
            if lagging:
                os.kill(replica.pid, signal.SIGSTOP)
                time.sleep(lagging)
            killed_at = time.monotonic()
            group.kill_primary()
            if lagging:
                os.kill(replica.pid, signal.SIGCONT)
            group.wait_for_failover()
            promoted = time.monotonic() - killed_at
            group.restart_old_primary(timeout=180)  # a full resync: minutes on a busy machine
            pusher.join(120)

            def handled() -> set[str]:
                return {m.decode() for m in ledger.smembers(handled_key)}

            returned = set(pusher.returned)
            # Without confirms, what the failover lost never comes: a drained queue is the end.
            drained = wait_until(
                lambda: _drained(group, queue) and (returned <= handled() or not replicas), 90
            )
            recovered = time.monotonic() - killed_at
            alive = sum(w.poll() is None for w in workers)
            for w in workers:
                w.send_signal(signal.SIGTERM)
            exits = [w.wait(30) for w in workers]
            stranded = _stranded(group, queue)
            seen = handled()
            return {
                "scenario": "failover",
                "replicas": replicas,
                "lagging_s": lagging,
                "batch": batch,
                "message_bytes": pad,
                "pushed": messages,
                "returned": len(returned),
                "unconfirmed": len(pusher.unconfirmed),
                "push_errors": pusher.errors,  # messages whose push raised otherwise
                "lost": len(returned - seen),
                "unconfirmed_handled": len(set(pusher.unconfirmed) & seen),
                "handled": len(seen),
                "duplicates": int(ledger.get(f"{queue}:handlings") or 0) - len(seen),
                "drained": drained,
                "workers_alive": alive,
                "worker_exits": exits,
                "stranded": stranded,
                "promoted_s": round(promoted, 2),
                "recovered_s": round(recovered, 2),
                "seconds": round(time.monotonic() - start, 2),
            }
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
            ledger.delete(handled_key, f"{queue}:handlings")


def wait_until(check: Any, timeout: float) -> bool:
    try:
        wait_for(check, timeout=timeout, interval=0.2)
    except AssertionError:
        return False
    return True


def _drained(group: SentinelGroup, queue: str) -> bool:
    try:
        stats = Queue(group.master_for(socket_timeout=1.0), queue).stats()
    except (redis.ConnectionError, redis.TimeoutError):
        return False
    return stats.waiting == stats.delayed == stats.unacked == stats.in_flight == 0


def _stranded(group: SentinelGroup, queue: str) -> int:
    """Messages left in any list of the queue once the workers stopped."""
    stats = Queue(group.master_for(socket_timeout=1.0), queue).stats()
    return stats.waiting + stats.delayed + stats.unacked + stats.in_flight
