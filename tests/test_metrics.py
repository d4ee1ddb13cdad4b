"""Prometheus metrics: ``orizuru worker --metrics-port`` scraped over HTTP after a known
number of messages, and what the metrics are built on."""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from orizuru_py import Observer, Producer, Worker
from orizuru_py.keys import QueueKeys
from orizuru_py.ops.embedded import _free_port
from orizuru_py.ops.metrics import QueueCollector
from tests import ops_handlers
from tests.support import counting_client, keys_of, wait_for

ROOT = Path(__file__).resolve().parent.parent
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """Every sample of ``/metrics``, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
        text = page.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def worker_process(redis_url: str) -> Iterator[list[subprocess.Popen[str]]]:
    """Started ``orizuru worker`` processes, stopped (SIGTERM) at the end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        p.wait(30)


def test_metrics_count_1000_messages_some_failing(
    r: redis.Redis, redis_url: str, queue: str, worker_process: list[subprocess.Popen[str]]
) -> None:
    """900 succeed; the 100 multiples of 10 fail twice: retried once, then dead-lettered."""
    port = _free_port()
    Producer(r, queue).push_many([{"n": i} for i in range(1000)])
    cmd = [sys.executable, "-m", "orizuru_py", "worker", "tests.ops_handlers:fail_every_tenth"]
    cmd += [queue, "--max-attempts", "2", "--metrics-port", str(port), "--redis-url", redis_url]
    worker_process.append(subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.DEVNULL, text=True))

    def done() -> Samples | None:
        try:
            samples = scrape(port)
        except OSError:  # not serving yet
            return None
        counted = value(samples, "orizuru_messages_dead_lettered_total", queue=queue)
        listed = value(samples, "orizuru_queue_messages", queue=queue, state="dead")
        return samples if counted == listed == 100 else None

    samples = wait_for(done, timeout=30, interval=0.2)
    counts = {
        name: value(samples, f"orizuru_messages_{name}_total", queue=queue)
        for name in ("acked", "failed", "retried", "dead_lettered")
    }
    assert counts == {"acked": 900, "failed": 200, "retried": 100, "dead_lettered": 100}
    assert value(samples, "orizuru_handler_duration_seconds_count", queue=queue) == 1100
    assert value(samples, "orizuru_messages_in_flight", queue=queue) == 0
    states = {
        state: value(samples, "orizuru_queue_messages", queue=queue, state=state)
        for state in ("waiting", "delayed", "unacked", "dead")
    }
    assert states == {"waiting": 0, "delayed": 0, "unacked": 0, "dead": 100}
    assert value(samples, "orizuru_consumers", queue=queue) == 1
    worker_process[0].send_signal(signal.SIGTERM)
    assert worker_process[0].wait(30) == 0
    r.delete(QueueKeys(queue).dead)


def test_queue_sizes_are_read_in_one_round_trip(redis_url: str, queue: str) -> None:
    client, trips = counting_client(redis_url)
    names = [f"{queue}-{i}" for i in range(5)]
    for name in names:
        Producer(client, name).push_many(range(3))
    collector = QueueCollector(client, names)
    before = trips.here()
    families = {f.name: f for f in collector.collect()}
    assert trips.here() - before == 1
    waiting = {
        s.labels["queue"]: s.value
        for s in families["orizuru_queue_messages"].samples
        if s.labels["state"] == "waiting"
    }
    assert waiting == dict.fromkeys(names, 3)
    for name in names:
        client.delete(QueueKeys(name).queue)
    assert [keys_of(client, name) for name in names] == [[]] * 5


class Outcomes(Observer):
    """Every call, as (method, message id)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def _add(self, what: str, message_id: str) -> None:
        with self._lock:
            self.calls.append((what, message_id))

    def started(self, queue: str, message_id: str) -> None:
        self._add("started", message_id)

    def acked(self, queue: str, message_id: str, seconds: float) -> None:
        self._add("acked", message_id)

    def failed(self, queue: str, message_id: str, attempt: int, exc: BaseException,
               retry_in: float | None) -> None:  # fmt: skip
        self._add("failed", message_id)


def test_an_observer_hears_an_outcome_for_every_start_with_pass_guard(
    r: redis.Redis, queue: str
) -> None:
    """A --pass-guard handler that settles its message itself still gives the observer an
    outcome for it, so the in-flight gauge comes back down."""
    ids = Producer(r, queue).push_many(range(5))
    observer = Outcomes()
    worker = Worker(r, queue, ops_handlers.ack_itself, pass_guard=True, observer=observer)
    thread = threading.Thread(target=worker.run)
    thread.start()
    wait_for(lambda: [c for c in observer.calls if c[0] == "started"][4:], timeout=10)
    worker.stop()  # returns once every handler call has ended
    thread.join(10)
    started = sorted(i for what, i in observer.calls if what == "started")
    settled = sorted(i for what, i in observer.calls if what != "started")
    assert started == sorted(ids)
    assert settled == started


def test_worker_stats_count_the_messages_in_hand(r: redis.Redis, queue: str) -> None:
    """``WorkerStats.in_flight`` counts the messages in handlers."""
    Producer(r, queue).push_many(range(4))
    release, running = threading.Event(), collections.deque[None]()

    def hold(payload: object) -> None:
        running.append(None)
        release.wait(10)

    worker = Worker(r, queue, hold, concurrency=4)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_for(lambda: len(running) == 4, timeout=10)
        in_hand = worker.stats.in_flight
    finally:
        release.set()
        worker.stop()
        thread.join(10)
    assert in_hand == 4


def listening_on(port: int) -> set[str]:
    """The IPv4 addresses with a socket listening on ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    return found


@pytest.mark.parametrize(
    ("options", "address"), [((), "127.0.0.1"), (("--metrics-host", "0.0.0.0"), "0.0.0.0")]
)
def test_metrics_listen_on_loopback_unless_told_otherwise(
    redis_url: str,
    queue: str,
    worker_process: list[subprocess.Popen[str]],
    options: tuple[str, ...],
    address: str,
) -> None:
    port = _free_port()
    cmd = [sys.executable, "-m", "orizuru_py", "worker", "tests.ops_handlers:fail_every_tenth"]
    cmd += [queue, "--metrics-port", str(port), "--redis-url", redis_url, *options]
    worker_process.append(subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.DEVNULL, text=True))
    assert wait_for(lambda: listening_on(port), timeout=30, interval=0.1) == {address}
    assert value(scrape(port), "orizuru_consumers", queue=queue) is not None
