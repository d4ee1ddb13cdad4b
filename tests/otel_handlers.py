"""A handler module for ``orizuru worker --processes N`` with traces: it sets up
OpenTelemetry's SDK and calls ``instrument()`` as it is imported, as the README says,
so every worker process traces. Its exporter writes each span to Redis (``HANDLED_URL``,
list ``SPANS_KEY``), so a test can read the spans of every process."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import redis
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from orizuru_py.otel import instrument

_r = redis.Redis.from_url(os.environ["HANDLED_URL"])
_key = os.environ["SPANS_KEY"]


class RedisExporter(SpanExporter):
    """Each span as one JSON line: its name, ids, parent, message id and process."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            assert span.context is not None
            record = {
                "name": span.name,
                "trace_id": span.context.trace_id,
                "parent_id": span.parent.span_id if span.parent else None,
                "message_id": (span.attributes or {}).get("messaging.message.id"),
                "pid": os.getpid(),
            }
            _r.rpush(_key, json.dumps(record))
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(RedisExporter()))
trace.set_tracer_provider(provider)
instrument()


def handle(payload: Any) -> None:
    """Nothing: the span around it is the point."""
