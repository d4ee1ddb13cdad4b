"""OpenTelemetry traces (extra ``otel``): ``from orizuru_py.otel import instrument; instrument()``.

Spans follow the OpenTelemetry messaging conventions. ``send QUEUE`` (PRODUCER) for each
push, and one for each ``push_many`` call, with ``messaging.batch.message_count``.
``process QUEUE`` (CONSUMER) around each handler run of a Worker and each ``with
guard:`` block of a Consumer, current while it runs (the handler's own spans are its
children) and a child of the send span of the push that made the message: that span's
W3C trace context travels in the message, an envelope extension (26 bytes, then the
tracestate if any), so every delivery of it, retries and revived dead letters too, is
in that trace. ``retry QUEUE`` and ``dead_letter QUEUE`` (settle) say what a failure
made of it. Only opentelemetry-api is used: the SDK, exporters and sampling are the
application's, set up before or after ``instrument()``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import attrs

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    from opentelemetry.util.types import AttributeValue
except ImportError as exc:
    raise ImportError(
        f"orizuru_py.otel needs OpenTelemetry's API ({exc}): pip install 'orizuru_py[otel]'"
    ) from exc

from . import __version__, envelope, tracing
from .tracing import Delivered

__all__ = ["instrument", "uninstrument"]

T = TypeVar("T")
SYSTEM = "orizuru"  # messaging.system: not one the conventions list, so our own name
ATTEMPT = "messaging.orizuru.message.attempt"  # deliveries so far, this one included
_W3C = TraceContextTextMapPropagator()
_TRACEPARENT = 26  # bytes: version, trace id (16), span id (8), flags
_MAX_TRACESTATE = 512  # W3C: a vendor may drop a longer tracestate; we carry none then

Opened = tuple[Span, object]


def instrument(tracer_provider: TracerProvider | None = None) -> None:
    """Trace every push, handler run and ``with guard:`` block of this process from now
    on, with spans of ``tracer_provider`` (default: the global one, which the
    application sets up with the SDK). Call it again to change the provider."""
    tracer = trace.get_tracer("orizuru_py", __version__, tracer_provider)
    tracing.hook = _Tracing(tracer)


def uninstrument() -> None:
    """Stop tracing: from now on nothing is added to a message's path."""
    tracing.hook = None


@attrs.frozen
class _Tracing:
    """The spans, as ``orizuru_py.tracing.Tracing`` asks for them."""

    tracer: Tracer

    async def send(
        self,
        queue: str,
        count: int | None,
        plan: Callable[[bytes | None], Coroutine[Any, Any, T]],
    ) -> T:
        attributes = _attributes(queue, "send", "send")
        if count is not None:
            attributes["messaging.batch.message_count"] = count
        span = self.tracer.start_span(
            f"send {queue}", kind=SpanKind.PRODUCER, attributes=attributes
        )
        with _current(span):
            result = await plan(carried(trace.set_span_in_context(span)))
            if isinstance(result, str):
                span.set_attribute("messaging.message.id", result)
            return result

    def process(self, handler: Callable[[Any], Any], guard: Delivered, pass_guard: bool) -> Any:
        with _current(self._process(guard)):
            return handler(guard if pass_guard else guard.payload)

    async def process_async(
        self, handler: Callable[[Any], Awaitable[Any]], guard: Delivered, pass_guard: bool
    ) -> Any:
        with _current(self._process(guard)):
            return await handler(guard if pass_guard else guard.payload)

    def enter(self, guard: Delivered) -> Opened:
        return _open(self._process(guard))

    def exit(self, opened: Opened, exc: BaseException | None) -> None:
        _close(*opened, exc)

    def retried(self, guard: Delivered, delay: float) -> None:
        self._settled(guard, "retry", {"messaging.orizuru.retry.delay": delay})

    def dead_lettered(self, guard: Delivered, reason: str) -> None:
        self._settled(guard, "dead_letter", {"messaging.orizuru.dead_letter.reason": reason})

    def _process(self, guard: Delivered) -> Span:
        """A process span for ``guard``, a child of the send span its message carries."""
        attributes = _attributes(guard.queue, "process", "process")
        attributes["messaging.message.id"] = guard.id
        attributes[ATTEMPT] = guard.attempts
        return self.tracer.start_span(
            f"process {guard.queue}",
            context=parent(guard.raw),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )

    def _settled(self, guard: Delivered, operation: str, more: dict[str, AttributeValue]) -> None:
        """A settle span: a child of the current span when one is recording (a ``with
        guard:`` block, a handler settling its guard), else of the message's send span."""
        attributes = _attributes(guard.queue, "settle", operation)
        attributes.update({"messaging.message.id": guard.id, ATTEMPT: guard.attempts, **more})
        recording = trace.get_current_span().is_recording()
        self.tracer.start_span(
            f"{operation} {guard.queue}",
            context=None if recording else parent(guard.raw),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        ).end()


def _attributes(queue: str, kind: str, name: str) -> dict[str, AttributeValue]:
    return {
        "messaging.system": SYSTEM,
        "messaging.destination.name": queue,
        "messaging.operation.type": kind,
        "messaging.operation.name": name,
    }


def carried(ctx: Context) -> bytes | None:
    """The trace context a message carries for ``ctx``: its W3C traceparent as 26 bytes,
    then its tracestate. None when ``ctx`` has no valid span (no SDK set up)."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=ctx)
    traceparent = carrier.get("traceparent")
    if traceparent is None:
        return None
    packed = bytes.fromhex(traceparent.replace("-", ""))
    state = carrier.get("tracestate", "").encode()
    return packed + state if len(state) <= _MAX_TRACESTATE else packed


def parent(raw: bytes) -> Context | None:
    """The context the message ``raw`` carries, checked by the W3C propagator: a pusher
    controls these bytes, and a malformed one gives the current context instead. None
    when it carries none (an old message, or one pushed without tracing)."""
    value = envelope.trace_context(raw)
    if value is None or len(value) < _TRACEPARENT:
        return None
    ids = f"{value[1:17].hex()}-{value[17:25].hex()}"
    carrier = {"traceparent": f"{value[0]:02x}-{ids}-{value[25]:02x}"}
    if len(value) > _TRACEPARENT:
        carrier["tracestate"] = value[_TRACEPARENT:].decode("ascii", "replace")
    return _W3C.extract(carrier, context=otel_context.get_current())


def _open(span: Span) -> Opened:
    return span, otel_context.attach(trace.set_span_in_context(span))


def _close(span: Span, token: Any, exc: BaseException | None) -> None:
    """End ``span`` (made current by ``_open``), recording ``exc``: anything a handler
    raises, SystemExit too, is a failed attempt to the Worker, so it is an error here."""
    try:
        if exc is not None and span.is_recording():
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            span.set_attribute("error.type", type(exc).__qualname__)
    finally:
        otel_context.detach(token)
        span.end()


@contextlib.contextmanager
def _current(span: Span) -> Iterator[None]:
    """``span`` current while the block runs, then ended, with what the block raised."""
    opened, error = _open(span), None
    try:
        yield
    except BaseException as exc:
        error = exc
        raise
    finally:
        _close(*opened, error)
