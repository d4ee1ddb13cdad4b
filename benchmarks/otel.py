"""What tracing costs per message: orizuru_py's paths with ``orizuru_py.otel`` against
the same paths without it, in interleaved rounds on one server.

    python benchmarks/otel.py [--redis-url URL] [--messages N] [--rounds R] [--json out.json]
    python benchmarks/otel.py --untraced-only   # the untraced rows alone (see below)

Traced means ``instrument()`` with an SDK ``TracerProvider`` whose spans go to a
``BatchSpanProcessor`` and an exporter that drops them (what an application pays short of
the network), every span sampled; "sampled out" is the same under a sampler that records
none (the spans are made, not recorded: the price of a low sampling rate). A traced row's
"vs ceiling" is its rate over the untraced row's. Paths: push, push_many(100), next and a
``with guard:`` block (a process span each, traced), the Worker (no-op, 8 threads) and
the asyncio Worker (no-op, 100 tasks). The messages a traced row consumes were pushed
traced, so they carry their context, as in use.

``--untraced-only`` measures the untraced rows alone and imports nothing of
OpenTelemetry, so the same script runs on a checkout from before tracing existed
(``PYTHONPATH=that/checkout``): the way to see that the hooks cost nothing when off.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from orizuru_py.consumer import Consumer
from orizuru_py.ops import bench, bench_async
from orizuru_py.ops.benchdata import Bench, Case, Result, Timer

Measure = Callable[[Bench, int], Result]


def next_with_guard(b: Bench, n: int) -> Result:
    """``Consumer.next`` then an empty ``with guard:`` block (it acks), one at a time."""
    queue = b.queue("otel-next")
    bench.fill(b, queue, n)
    with Consumer(b.r, queue, prefix=b.prefix) as consumer, Timer(b.r) as t:
        for _ in range(n):
            guard = consumer.next(timeout=60.0)
            if guard is None:
                raise RuntimeError(f"queue {queue} ran dry")
            with guard:
                pass
    b.drop(queue)
    return t.result(n)


PATHS: list[tuple[str, str, Measure, bool]] = [  # name, label, measure, one message a call
    ("push", "push", bench.push, True),
    ("push_many", f"push_many ({bench.BATCH})", bench.push_many, False),
    ("next_guard", "next + with guard", next_with_guard, True),
    ("worker", "Worker no-op, 8 threads", bench.worker, False),
    ("async_worker", "asyncio Worker no-op, 100 tasks", bench_async.worker, False),
]


def providers() -> dict[str, Any]:
    """The SDK providers of the traced modes: every span sampled, or none."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    class Dropped(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    sampled, unsampled = TracerProvider(), TracerProvider(sampler=ALWAYS_OFF)
    for provider in (sampled, unsampled):
        provider.add_span_processor(BatchSpanProcessor(Dropped()))
    return {"traced": sampled, "sampled out": unsampled}


def traced(measure: Measure, provider: Any) -> Measure:
    """``measure`` with tracing on (setup included: what it pushes carries a context)."""
    from orizuru_py.otel import instrument, uninstrument

    def run(b: Bench, n: int) -> Result:
        instrument(tracer_provider=provider)
        try:
            return measure(b, n)
        finally:
            uninstrument()

    return run


def cases(messages: int, untraced_only: bool) -> list[Case]:
    """Each path untraced, then traced in each mode against it. A path of one message a
    call runs in 5 parts a round, interleaved with its traced rows."""
    modes = {} if untraced_only else providers()
    out = []
    for name, label, measure, single in PATHS:
        slices = 5 if single else 1
        out.append(Case(name, label, messages, measure, None, slices))
        for mode, provider in modes.items():
            key = f"{name} {mode}"
            out.append(Case(key, f"  {mode}", messages, traced(measure, provider), name, slices))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="The cost of tracing per message.")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    p.add_argument("--messages", type=int, default=5_000, help="per row and round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--untraced-only", action="store_true", help="no OpenTelemetry at all")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    note = "vs ceiling: a traced row's rate over its untraced row's."
    return bench.measure(
        args.redis_url,
        "tracing cost",
        cases(args.messages, args.untraced_only),
        args.rounds,
        note,
        args.json,
    )


if __name__ == "__main__":
    sys.exit(main())
