"""OpenTelemetry traces (orizuru_py.otel): send and process spans on both APIs, each
message's process spans in the trace of its push, recorded by the SDK's in-memory
exporter; without instrument() nothing is added to a message."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import redis
import redis.asyncio
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
    TraceState,
)

import orizuru_py.asyncio as aio
from orizuru_py import Consumer, Producer, Queue, Worker, envelope, tracing
from orizuru_py.backoff import Exponential
from orizuru_py.keys import QueueKeys
from orizuru_py.otel import instrument, parent, uninstrument
from tests.support import running, wait_for

ROOT = Path(__file__).resolve().parent.parent


@attrs.define
class Traces:
    """The spans an instrumented test made."""

    provider: TracerProvider
    exporter: InMemorySpanExporter

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        (span,) = self.named(name)
        return span


@pytest.fixture
def traces() -> Iterator[Traces]:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument(tracer_provider=provider)
    yield Traces(provider, exporter)
    uninstrument()
    provider.shutdown()


def stored(r: redis.Redis, queue: str) -> list[bytes]:
    """The messages waiting in ``queue``, oldest first."""
    return list(reversed(r.lrange(QueueKeys(queue).queue, 0, -1)))


def is_child(span: ReadableSpan, of: ReadableSpan) -> bool:
    assert span.parent is not None and of.context is not None and span.context is not None
    return span.parent.span_id == of.context.span_id and span.context.trace_id == (
        of.context.trace_id
    )


def work(
    api: str, redis_url: str, queue: str, runs: int, body: Callable[[Any], None], **options: Any
) -> None:
    """Run a Worker of ``api`` on ``queue`` until its handler has run ``runs`` times
    (``body(payload)`` is what the handler does), then stop it."""
    done, count = threading.Event(), itertools.count(1)

    def handle(payload: Any) -> None:
        try:
            body(payload)
        finally:
            if next(count) >= runs:
                done.set()

    if api == "blocking":
        r = redis.Redis.from_url(redis_url)
        with running(Worker(r, queue, handle, **options)):
            assert done.wait(30)
        r.close()
        return

    async def handle_async(payload: Any) -> None:
        handle(payload)

    async def main() -> None:
        ar = redis.asyncio.Redis.from_url(redis_url)
        worker = aio.Worker(ar, queue, handle_async, **options)
        task = asyncio.create_task(worker.run())
        assert await asyncio.to_thread(done.wait, 30)
        worker.stop()
        await asyncio.wait_for(task, 30)
        await ar.aclose()

    asyncio.run(main())


# -- off ------------------------------------------------------------------------------------


def test_without_instrument_nothing_is_added_to_a_message(r: redis.Redis, queue: str) -> None:
    assert tracing.hook is None
    app = TracerProvider().get_tracer("app")
    with app.start_as_current_span("request"):  # an application that traces, but not us
        Producer(r, queue).push({"n": 0})
        Producer(r, queue).push_many([{"n": 1}, {"n": 2}])
    raws = stored(r, queue)
    assert [raw[:3] for raw in raws] == [b"OZ\x03"] * 3
    assert [envelope.trace_context(raw) for raw in raws] == [None] * 3


def test_without_the_extra_importing_otel_says_what_to_install() -> None:
    code = "import sys; sys.modules['opentelemetry'] = None; import orizuru_py.otel"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: orizuru_py.otel needs OpenTelemetry's API")
    assert last.endswith("pip install 'orizuru_py[otel]'")


# -- send -----------------------------------------------------------------------------------


def test_a_push_is_a_send_span_whose_context_the_message_carries(
    traces: Traces, r: redis.Redis, queue: str
) -> None:
    request = traces.provider.get_tracer("app").start_span(
        "request", context=remote(TraceState([("vendor", "v1")]))
    )
    with trace.use_span(request, end_on_exit=True):  # a web request's span, say
        mid = Producer(r, queue).push({"n": 0})
    send = traces.one(f"send {queue}")
    assert send.kind is SpanKind.PRODUCER and is_child(send, traces.one("request"))
    assert dict(send.attributes or {}) == {
        "messaging.system": "orizuru",
        "messaging.destination.name": queue,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.message.id": mid,
    }
    (raw,) = stored(r, queue)
    assert send.context is not None
    assert envelope.trace_context(raw) == (
        b"\x00"
        + send.context.trace_id.to_bytes(16, "big")
        + send.context.span_id.to_bytes(8, "big")
        + bytes([send.context.trace_flags])
        + b"vendor=v1"
    )
    consumer = Consumer(r, queue)
    with consumer.next(timeout=1.0):  # type: ignore[union-attr]
        pass
    consumer.close()
    processed = traces.one(f"process {queue}")
    assert is_child(processed, send) and processed.parent is not None
    assert processed.parent.trace_state == TraceState([("vendor", "v1")])


def remote(state: TraceState) -> Context:
    """A context whose span came from elsewhere, with ``state``."""
    ids = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1), trace_state=state)
    return trace.set_span_in_context(NonRecordingSpan(ids))


def test_push_many_is_one_send_span_and_each_message_a_child_of_it(
    traces: Traces, r: redis.Redis, queue: str
) -> None:
    ids = Producer(r, queue).push_many([{"n": i} for i in range(5)])
    send = traces.one(f"send {queue}")
    assert (send.attributes or {})["messaging.batch.message_count"] == 5
    assert "messaging.message.id" not in (send.attributes or {})
    consumer = Consumer(r, queue)
    for guard in consumer.next_batch(5, timeout=1.0):
        with guard:
            pass
    consumer.close()
    processed = traces.named(f"process {queue}")
    assert sorted(str((s.attributes or {})["messaging.message.id"]) for s in processed) == sorted(
        ids
    )
    assert all(is_child(span, send) for span in processed)


def test_a_push_that_fails_is_a_send_span_with_its_error(
    traces: Traces, r: redis.Redis, queue: str
) -> None:
    r.set(QueueKeys(queue).queue, "not a list")
    with pytest.raises(redis.ResponseError):
        Producer(r, queue).push({"n": 0})
    send = traces.one(f"send {queue}")
    assert send.status.status_code is StatusCode.ERROR
    assert (send.attributes or {})["error.type"] == "ResponseError"
    r.delete(QueueKeys(queue).queue)


# -- process --------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["blocking", "asyncio"])
def test_each_handler_run_of_a_worker_is_a_process_span_in_the_trace_of_its_push(
    api: str, traces: Traces, r: redis.Redis, redis_url: str, queue: str
) -> None:
    ids = [Producer(r, queue).push({"n": i}) for i in range(3)]
    inner = traces.provider.get_tracer("app")

    def body(payload: Any) -> None:
        with inner.start_as_current_span(f"inner {payload['n']}"):
            pass

    work(api, redis_url, queue, 3, body)
    sends = {
        str((s.attributes or {})["messaging.message.id"]): s for s in traces.named(f"send {queue}")
    }
    processed = traces.named(f"process {queue}")
    assert len(processed) == 3
    for span in processed:
        attributes = dict(span.attributes or {})
        mid = str(attributes.pop("messaging.message.id"))
        assert attributes == {
            "messaging.system": "orizuru",
            "messaging.destination.name": queue,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.orizuru.message.attempt": 1,
        }
        assert span.kind is SpanKind.CONSUMER
        assert span.status.status_code is StatusCode.UNSET
        assert is_child(span, sends[mid])
    assert sorted(sends) == sorted(ids)
    for n in range(3):  # the handler's own span is a child of its process span
        assert len([p for p in processed if is_child(traces.one(f"inner {n}"), p)]) == 1


@pytest.mark.parametrize("api", ["blocking", "asyncio"])
def test_a_failed_run_is_recorded_and_its_retry_is_in_the_same_trace(
    api: str, traces: Traces, r: redis.Redis, redis_url: str, queue: str
) -> None:
    Producer(r, queue).push({"n": 0})
    failures = iter([ValueError("boom")])

    def body(payload: Any) -> None:
        failure = next(failures, None)
        if failure is not None:
            raise failure

    work(api, redis_url, queue, 2, body, backoff=Exponential(base=0.05, jitter=0))
    send = traces.one(f"send {queue}")
    first, second = sorted(
        traces.named(f"process {queue}"),
        key=lambda s: (s.attributes or {})["messaging.orizuru.message.attempt"],
    )
    assert is_child(first, send) and is_child(second, send)
    assert first.status.status_code is StatusCode.ERROR
    assert (first.attributes or {})["error.type"] == "ValueError"
    assert [e.name for e in first.events] == ["exception"]
    assert (first.events[0].attributes or {})["exception.message"] == "boom"
    assert second.status.status_code is StatusCode.UNSET
    retry = traces.one(f"retry {queue}")
    assert is_child(retry, send) and retry.kind is SpanKind.CLIENT
    assert (retry.attributes or {})["messaging.operation.type"] == "settle"
    assert (retry.attributes or {})["messaging.orizuru.retry.delay"] == 0.05


def test_a_dead_lettered_message_is_recorded_and_revived_in_the_same_trace(
    traces: Traces, r: redis.Redis, redis_url: str, queue: str
) -> None:
    Producer(r, queue).push({"n": 0})

    def body(payload: Any) -> None:
        raise SystemExit(3)  # anything a handler raises fails its attempt

    work("blocking", redis_url, queue, 1, body, max_attempts=1)
    send = traces.one(f"send {queue}")
    failed = traces.one(f"process {queue}")
    assert failed.status.status_code is StatusCode.ERROR
    assert (failed.attributes or {})["error.type"] == "SystemExit"
    dead = traces.one(f"dead_letter {queue}")
    assert is_child(dead, send)
    assert (dead.attributes or {})["messaging.orizuru.dead_letter.reason"] == "SystemExit: 3"

    assert Queue(r, queue).requeue_dead() == 1
    traces.exporter.clear()
    consumer = Consumer(r, queue)
    guard = consumer.next(timeout=1.0)
    assert guard is not None
    with guard:
        pass
    consumer.close()
    assert is_child(traces.one(f"process {queue}"), send)


def test_a_with_guard_block_is_a_process_span_current_while_it_runs(
    traces: Traces, r: redis.Redis, queue: str
) -> None:
    Producer(r, queue).push_many([{"n": 0}, {"n": 1}])
    inner = traces.provider.get_tracer("app")
    consumer = Consumer(r, queue)
    with consumer.next(timeout=1.0) as guard, inner.start_as_current_span("inner"):
        pass
    with pytest.raises(KeyError), consumer.next(timeout=1.0):
        raise KeyError("k")
    consumer.close()
    ok, failed = traces.named(f"process {queue}")
    send = traces.one(f"send {queue}")
    assert is_child(ok, send) and is_child(failed, send)
    assert is_child(traces.one("inner"), ok)
    assert (ok.attributes or {})["messaging.message.id"] == guard.id
    assert failed.status.status_code is StatusCode.ERROR
    assert trace.get_current_span() is trace.INVALID_SPAN  # each block's context is gone
    assert Queue(r, queue).stats().unacked == 1  # the failed block rejected its message


def test_an_async_with_guard_block_is_a_process_span_current_while_it_runs(
    traces: Traces, redis_url: str, queue: str
) -> None:
    inner = traces.provider.get_tracer("app")

    async def main() -> None:
        ar = redis.asyncio.Redis.from_url(redis_url)
        await aio.Producer(ar, queue).push_many([{"n": 0}, {"n": 1}])
        async with aio.Consumer(ar, queue) as consumer:
            guard = await consumer.next(timeout=1.0)
            assert guard is not None
            async with guard:
                with inner.start_as_current_span("inner"):
                    await asyncio.sleep(0)
            guard = await consumer.next(timeout=1.0)
            assert guard is not None
            with pytest.raises(KeyError):
                async with guard:
                    raise KeyError("k")
        await ar.aclose()

    asyncio.run(main())
    ok, failed = traces.named(f"process {queue}")
    send = traces.one(f"send {queue}")
    assert is_child(ok, send) and is_child(failed, send)
    assert is_child(traces.one("inner"), ok)
    assert failed.status.status_code is StatusCode.ERROR


def two_pids(q: Queue) -> set[int] | None:
    """The pids of the queue's consumers, once there are two."""
    pids = {c.pid for c in q.stats().consumers}
    return pids if len(pids) == 2 else None


def test_instrument_in_the_handler_module_traces_every_worker_process(
    traces: Traces, r: redis.Redis, redis_url: str, queue: str
) -> None:
    spans = f"{queue}:spans"
    cmd = [sys.executable, "-m", "orizuru_py", "worker", "tests.otel_handlers:handle", queue]
    cmd += ["--processes", "2", "--concurrency", "1", "--redis-url", redis_url]
    env = {**os.environ, "HANDLED_URL": redis_url, "SPANS_KEY": spans}
    supervisor = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        q = Queue(r, queue)
        children = wait_for(lambda: two_pids(q), timeout=60)
        producer, records = Producer(r, queue), []
        # One at a time: the server hands each to the worker that has waited longest, so
        # they alternate (a few more allow for a take that timed out and came back).
        while {rec["pid"] for rec in records} != children and len(records) < 20:
            producer.push({"n": len(records)})
            wait_for(lambda: r.llen(spans) > len(records), timeout=30)
            records.append(json.loads(r.lindex(spans, len(records)) or b"{}"))
    finally:
        supervisor.terminate()
        _, err = supervisor.communicate(timeout=60)
    assert supervisor.returncode == 0, err
    assert {rec["pid"] for rec in records} == children
    sends = {(s.attributes or {})["messaging.message.id"]: s for s in traces.named(f"send {queue}")}
    for rec in records:
        send = sends[rec["message_id"]]
        assert send.context is not None and rec["name"] == f"process {queue}"
        assert (rec["trace_id"], rec["parent_id"]) == (send.context.trace_id, send.context.span_id)
    r.delete(spans)


# -- the envelope's field -------------------------------------------------------------------


def test_a_traced_message_with_a_unique_key_still_frees_its_key(
    traces: Traces, r: redis.Redis, queue: str
) -> None:
    producer, consumer = Producer(r, queue), Consumer(r, queue)
    for settle in ("ack", "dead_letter"):
        first = producer.push({"n": 0}, unique_key="k")
        (raw,) = stored(r, queue)
        assert raw[:3] == b"OZ\x04" and raw[22] == 3  # the trace context comes first: the
        # scripts skip it (its tag follows the 20-byte header and the extensions' length)
        assert producer.push({"n": 1}, unique_key="k") == first  # the key is held
        guard = consumer.next(timeout=1.0)
        assert guard is not None and guard.unique_key == "k"
        getattr(guard, settle)()
        assert r.hlen(QueueKeys(queue).unique) == 0  # freed, as the script found it
        assert producer.push({"n": 2}, unique_key="k") != first
        consumer.next(timeout=1.0).ack()  # type: ignore[union-attr]
    consumer.close()
    Queue(r, queue).purge(dead=True)


def test_old_and_hostile_messages_are_processed_in_traces_of_their_own(
    traces: Traces, r: redis.Redis, queue: str
) -> None:
    uninstrument()
    Producer(r, queue).push({"n": "old"})  # pushed before tracing: version 1
    Producer(r, queue).push({"n": "unique"}, unique_key="u")  # version 2, no trace context
    instrument(tracer_provider=traces.provider)
    now = envelope.now_ms()
    hostile = [
        b"\x00" * 26,  # all-zero ids: invalid
        b"\xff" + bytes(range(1, 26)),  # version ff: invalid
        b"\x00" * 5,  # too short
        b"\x00" + bytes(range(1, 26)) + b"\xff\xfe=;,\n" * 20,  # a garbage tracestate
    ]
    for i, value in enumerate(hostile):
        raw = envelope.encode(envelope.new_id(now), now, b"\x81\xa1n\x00", trace=value)
        r.lpush(QueueKeys(queue).queue, raw)
        assert envelope.Envelope.decode(raw).payload == b"\x81\xa1n\x00", i
    consumer = Consumer(r, queue)
    payloads = []
    for _ in range(6):
        guard = consumer.next(timeout=1.0)
        assert guard is not None
        with guard:
            payloads.append(guard.payload)
    consumer.close()
    assert payloads == [{"n": "old"}, {"n": "unique"}, *[{"n": 0}] * 4]
    processed = traces.named(f"process {queue}")
    assert len(processed) == 6
    roots = [s for s in processed if s.parent is None]
    # The last one's traceparent is valid, only its tracestate is garbage (and dropped).
    assert len(roots) == 5
    assert Queue(r, queue).stats().dead == 0


def version_2(mid: str, extensions: bytes, payload: bytes) -> bytes:
    """A version 2 envelope with these extensions, built by hand."""
    head = envelope.encode(mid, 1, b"")[3:]  # deliveries, enqueued, the id
    return b"OZ\x02" + head + len(extensions).to_bytes(2, "big") + extensions + payload


def test_the_trace_context_is_read_only_from_a_well_formed_field() -> None:
    now = envelope.now_ms()
    plain = envelope.encode("a1", now, b"p")
    assert envelope.trace_context(plain) is None
    assert parent(plain) is None
    traced = envelope.encode("a1", now, b"p", 0, "key", now + 5, b"ctx")
    untraced = envelope.encode("a1", now, b"p", 0, "key", now + 5)
    assert envelope.parse(traced) == envelope.parse(untraced)
    assert envelope.trace_context(traced) == b"ctx"
    assert envelope.Envelope.decode(traced).trace == b"ctx"
    assert envelope.trace_context(traced[:22]) is None  # truncated: no context, no error
    future = version_2("a1", b"\x09\x00\x02zz\x03\x00\x03ctx", b"p")  # an unknown tag first
    assert envelope.parse(future)[-1] == b"p"
    assert envelope.trace_context(future) == b"ctx"


def test_new_messages_with_a_trace_context_are_encode_of_each() -> None:
    now = envelope.now_ms()
    payloads = [bytes([i]) * i for i in range(5)]
    ids, raws = envelope.new_messages(payloads, now, b"ctx")
    assert raws == [
        envelope.encode(mid, now, p, trace=b"ctx") for mid, p in zip(ids, payloads, strict=True)
    ]
