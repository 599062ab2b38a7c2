"""OpenTelemetry spans, exported over OTLP/HTTP; this module imports the SDK.

Imported only when OTEL_TRACES_EXPORTER names an exporter (functions.telemetry.start), in
the serving process after the fork. The SDK reads its own variables: the OTLP endpoint and
headers (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, ..._HEADERS), OTEL_TRACES_SAMPLER[_ARG]
(default: follow the caller's sampling decision), OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*.

Spans (docs/tracing.md shows a trace):
- a request is a server span continuing the incoming trace (``traceparent``,
  ``X-Cloud-Trace-Context``, X-Ray); ``decode`` (reading and decoding the body, up to its
  first child) and ``encode`` (from its last child to the answer) are recorded from the
  times its children started and ended, so the serving code pays nothing for them;
- ``model.call`` for every model call, ``lookups`` with cache hits and misses and one
  ``lookup`` client span per feature-service call (it sends ``traceparent``);
- a request queued in the batcher is ``model.queue`` until its answer; the merged call that
  served it is ``model.batch``, a trace of its own with a link to every request's queue
  span, and each queue span links back to it;
- cold start: ``model.load`` with ``model.download``, ``model.sha256``, ``tokenizer.fetch``,
  ``session.build``, ``warmup``, ``model.prepare``; events: one span per message or
  object, and ``score.chunk`` per chunk of a scored file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanProcessor,
)
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from functions.config.settings import Settings
from functions.telemetry.context import HEADER, Fields, Header, TraceIds, parse

SCOPE = "onnx-serverless"
REQUEST: ContextVar[Traced | None] = ContextVar("traced_request", default=None)


def remote_parent(header: Header | None) -> otel_context.Context | None:
    """The context continuing ``header``'s trace (None: a new trace, or the current one)."""
    ids = parse(header) if header is not None else None
    if ids is None or ids.span is None:
        return None
    flags = TraceFlags(TraceFlags.SAMPLED if ids.sampled else TraceFlags.DEFAULT)
    parent = SpanContext(int(ids.trace, 16), int(ids.span, 16), is_remote=True,
                         trace_flags=flags)
    return trace.set_span_in_context(NonRecordingSpan(parent), otel_context.Context())


class Traced:
    """One request's server span, and when its children ran (for decode and encode)."""

    def __init__(self, tracer: trace.Tracer, span: trace.Span) -> None:
        self.tracer = tracer
        self.span = span
        self.first: int | None = None
        self.last: int | None = None
        self.queued: list[Any] = []
        """Its ``model.queue`` spans, ended by the batcher."""
        self._tokens = (otel_context.attach(trace.set_span_in_context(span)),
                        REQUEST.set(self))

    def mark(self, span: Any) -> None:
        """A child span ended: widen the part of the request that was not decode/encode."""
        start, end = getattr(span, "start_time", None), getattr(span, "end_time", None)
        if start is None or end is None:
            return
        self.first = start if self.first is None else min(self.first, start)
        self.last = end if self.last is None else max(self.last, end)

    def end(self, status: int | None) -> None:
        span = self.span
        REQUEST.reset(self._tokens[1])
        otel_context.detach(self._tokens[0])
        if status is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(trace.StatusCode.ERROR)
        for child in self.queued:
            self.mark(child)
        now = time.time_ns()
        began = getattr(span, "start_time", None)
        if self.first is not None and began is not None:
            parent = trace.set_span_in_context(span, otel_context.Context())
            self.tracer.start_span("decode", parent, start_time=began).end(self.first)
            self.tracer.start_span("encode", parent, start_time=self.last).end(now)
        span.end(now)


class Tracing:
    """The process's tracer provider and the spans the serving code asks for."""

    def __init__(self, provider: TracerProvider, flush_each_event: bool = False) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer(SCOPE)
        self.flush_each_event = flush_each_event
        """Lambda freezes the process between invocations: spans are sent before it does."""
        Fields.current = self.current_ids

    @classmethod
    def from_settings(cls, settings: Settings) -> Tracing:
        resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            name = settings.k_service or settings.aws_lambda_function_name or SCOPE
            resource = resource.merge(Resource({"service.name": name}))
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(processor(settings.otel_traces_exporter))
        return cls(provider, flush_each_event=bool(settings.aws_lambda_function_name))

    def close(self) -> None:
        """Export what is left and stop (tests; the SDK does it at exit by itself)."""
        Fields.current = None
        self.provider.shutdown()

    # -- what the serving code calls -------------------------------------------------------
    def request(self, method: str, route: str, header: Header | None) -> Traced:
        parent = remote_parent(header if header is not None else HEADER.get())
        span = self.tracer.start_span(f"{method} {route}", parent, SpanKind.SERVER,
                                      {"http.request.method": method, "http.route": route})
        return Traced(self.tracer, span)

    @contextmanager
    def span(self, name: str, attributes: dict[str, Any] | None = None,
             header: Header | None = None,
             kind: SpanKind = SpanKind.INTERNAL) -> Iterator[trace.Span]:
        """A span under the current one, or continuing ``header``'s trace, or with no span
        current, the trace of the request or invocation being handled (``HEADER``)."""
        if header is None and not trace.get_current_span().get_span_context().is_valid:
            header = HEADER.get()
        parent = remote_parent(header) if header is not None else None
        if parent is None and _sampled_out(otel_context.get_current()):
            yield trace.get_current_span()  # nothing under a span the sampler dropped
            return
        with self.tracer.start_as_current_span(name, parent, kind, attributes) as span:
            yield span
        traced = REQUEST.get()
        if traced is not None:
            traced.mark(span)

    def client(self, name: str, attributes: dict[str, Any]) -> Any:
        """A span for a call this function makes to another service."""
        return self.span(name, attributes, kind=SpanKind.CLIENT)

    def model_call(self, run: Callable[[Any], Any], rows: int) -> Callable[[Any], Any]:
        """``run`` as one ``model.call`` span under the span current now, wherever (in
        whichever thread) it is called."""
        parent = otel_context.get_current()
        if _sampled_out(parent):
            return run
        traced = REQUEST.get()

        def call(feeds: Any) -> Any:
            span = self.tracer.start_span("model.call", parent, attributes={"model.rows": rows})
            try:
                with trace.use_span(span, end_on_exit=True):
                    return run(feeds)
            finally:
                if traced is not None:
                    traced.mark(span)
        return call

    def queued(self, rows: int) -> trace.Span:
        """The span of a request waiting in the batcher (ended by the caller)."""
        span = self.tracer.start_span("model.queue", attributes={"model.rows": rows})
        traced = REQUEST.get()
        if traced is not None:
            traced.queued.append(span)
        return span

    @contextmanager
    def merged(self, queued: list[Any], rows: int) -> Iterator[None]:
        """One merged model call: a trace of its own linking every request it serves, and
        each request's ``model.queue`` span linking back to it."""
        links = [Link(s.get_span_context()) for s in queued if s is not None]
        span = self.tracer.start_span("model.batch", otel_context.Context(), links=links,
                                      attributes={"batch.requests": len(queued),
                                                  "batch.rows": rows})
        back = Link(span.get_span_context())
        for s in queued:
            if s is not None:
                s.add_link(back.context, {"batch.requests": len(queued)})
                s.set_attribute("batch.requests", len(queued))
        token = REQUEST.set(None)  # the drain task copied some request's context
        try:
            with trace.use_span(span, end_on_exit=True):
                yield
        finally:
            REQUEST.reset(token)

    def annotate(self, attributes: dict[str, Any]) -> None:
        trace.get_current_span().set_attributes(attributes)

    def outgoing(self) -> dict[str, str]:
        """Headers that carry the current span to a service we call (``traceparent``)."""
        carrier: dict[str, str] = {}
        inject(carrier)
        return carrier

    def flush(self) -> None:
        if self.flush_each_event:
            self.provider.force_flush()

    def current_ids(self) -> TraceIds | None:
        """The ids of the current span, for log lines (X-Ray's form where the trace came
        from X-Ray); None under a span that is not recorded (the sampler dropped it: the
        line names the caller's span, which exists, instead)."""
        span = trace.get_current_span()
        if not span.is_recording():
            return None
        ctx = span.get_span_context()
        tid = f"{ctx.trace_id:032x}"
        header = HEADER.get()
        came = parse(header) if header is not None else None
        xray = f"1-{tid[:8]}-{tid[8:]}" if came is not None and came.xray else None
        return TraceIds(tid, f"{ctx.span_id:016x}", ctx.trace_flags.sampled, xray)


def _sampled_out(context: otel_context.Context) -> bool:
    """Whether ``context`` holds a span the sampler dropped (its children would be dropped
    too: not creating them saves the SDK's work per span)."""
    span = trace.get_current_span(context)
    return span.get_span_context().is_valid and not span.is_recording()


def processor(exporter: str, span_exporter: SpanExporter | None = None) -> SpanProcessor:
    """A batching processor for OTEL_TRACES_EXPORTER (``otlp``: OTLP/HTTP, ``console``)."""
    if span_exporter is None:
        if exporter == "console":
            span_exporter = ConsoleSpanExporter()
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            span_exporter = OTLPSpanExporter()
    return BatchSpanProcessor(span_exporter)
