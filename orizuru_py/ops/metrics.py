"""Prometheus metrics (extra ``metrics``): what a Worker does, counted by an ``Observer``,
and what its queues hold, read from Redis at scrape time.

    worker = Worker(r, "emails", handle, observer=PrometheusObserver(["emails"]))
    REGISTRY.register(QueueCollector(r, ["emails"]))
    prometheus_client.start_http_server(9100)

Every metric has the label ``queue``. Under ``orizuru worker --processes N`` each
process counts into prometheus_client's multiprocess files and the supervisor serves
their sums (``orizuru_messages_in_flight`` is summed over live processes only).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..collector import CollectReport
from ..keys import QueueKeys
from ..observer import Observer
from ..plan import Driver
from ..stats import sizes

log = logging.getLogger("orizuru_py.metrics")

STATES = ("waiting", "delayed", "unacked", "dead")
# From a no-op handler's 100 us to a minute: a queue runs both.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@attrs.frozen
class _Series:
    """One queue's children of the observer's metrics (``labels()`` takes a lock and
    builds a key on every call: looked up once per queue, not per message)."""

    acked: Any
    failed: Any
    retried: Any
    dead_lettered: Any
    duration: Any
    in_flight: Any


class PrometheusObserver(Observer):
    """Counts a Worker's outcomes per queue; ``queues`` start at 0 (rather than appear at
    their first event). ``registry=None`` registers nowhere (the multiprocess mode,
    where the files are what is collected)."""

    def __init__(
        self, queues: Sequence[str] = (), registry: CollectorRegistry | None = REGISTRY
    ) -> None:
        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, ["queue"], registry=registry)

        self.metrics = (
            counter("orizuru_messages_acked", "Messages handled and acknowledged."),
            counter("orizuru_messages_failed", "Handler calls that raised."),
            counter("orizuru_messages_retried", "Failed messages scheduled for another attempt."),
            counter(
                "orizuru_messages_dead_lettered",
                "Messages moved to the dead-letter list, by a handler's last failure or the GC.",
            ),
            Histogram(
                "orizuru_handler_duration_seconds",
                "Seconds a handler call took.",
                ["queue"],
                registry=registry,
                buckets=BUCKETS,
            ),
            Gauge(
                "orizuru_messages_in_flight",
                "Messages in a handler right now.",
                ["queue"],
                registry=registry,
                multiprocess_mode="livesum",
            ),
        )
        self._series: dict[str, _Series] = {}
        # A failed call's duration: acked() is told it, failed() is not.
        self._started: dict[tuple[str, str], float] = {}
        for queue in queues:
            self._of(queue)

    def _of(self, queue: str) -> _Series:
        series = self._series.get(queue)
        if series is None:  # two threads may both get here: labels() gives both the same
            series = self._series[queue] = _Series(*(m.labels(queue) for m in self.metrics))
        return series

    def started(self, queue: str, message_id: str) -> None:
        self._started[queue, message_id] = time.perf_counter()
        self._of(queue).in_flight.inc()

    def acked(self, queue: str, message_id: str, seconds: float) -> None:
        self._started.pop((queue, message_id), None)
        series = self._of(queue)
        series.in_flight.dec()
        series.acked.inc()
        series.duration.observe(seconds)

    def failed(
        self,
        queue: str,
        message_id: str,
        attempt: int,
        exc: BaseException,
        retry_in: float | None,
    ) -> None:
        series = self._of(queue)
        t0 = self._started.pop((queue, message_id), None)
        if t0 is not None:
            series.duration.observe(time.perf_counter() - t0)
        series.in_flight.dec()
        series.failed.inc()
        if retry_in is not None:
            series.retried.inc()

    def dead_lettered(self, queue: str, message_id: str, reason: str) -> None:
        self._of(queue).dead_lettered.inc()

    def recovered(self, queue: str, report: CollectReport) -> None:
        if report.dead_lettered:
            self._of(queue).dead_lettered.inc(report.dead_lettered)


class QueueCollector(Collector):
    """``orizuru_queue_messages`` and ``orizuru_consumers`` of ``queues``, read at each
    scrape in one round trip. A scrape while Redis is away leaves them out (and logs)."""

    def __init__(self, r: Any, queues: Sequence[str], prefix: str = "orizuru") -> None:
        self.r, self.queues, self.prefix = r, list(queues), prefix

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            keys = [QueueKeys(n, self.prefix) for n in self.queues]
            found = Driver(self.r).run(sizes(keys))
        except Exception as exc:
            log.warning("metrics: could not read the queues' sizes: %s", exc)
            return
        messages = GaugeMetricFamily(
            "orizuru_queue_messages", "Messages in a queue, by state.", labels=["queue", "state"]
        )
        consumers = GaugeMetricFamily(
            "orizuru_consumers", "Live consumers of a queue.", labels=["queue"]
        )
        for queue, size in found.items():
            for state in STATES:
                messages.add_metric([queue, state], size[state])
            consumers.add_metric([queue], size["consumers"])
        yield messages
        yield consumers

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # no Redis round trip at registration


def serve(port: int, registry: CollectorRegistry = REGISTRY, host: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` on ``host``:``port`` from a daemon thread: loopback unless told
    otherwise, since the queue names it lists are anyone's who can push."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=registry)
