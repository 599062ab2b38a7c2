"""Span helpers for the serving code: each is one ``tracer is None`` check when tracing is
off (the default), and never imports the SDK itself.

The per-request hot path does not call these: the Router and the runner check
``functions.telemetry.tracer`` inline. These are for the paths that are not per-row cheap
already: cold start, lookups, events, the batcher's queue.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, TypeVar

from functions import telemetry
from functions.telemetry.context import ITEM, Header, continued

T = TypeVar("T")


def span(name: str, **attributes: Any) -> Any:
    """``with span("model.download", uri=...)``: a span under the current one, or nothing."""
    tracer = telemetry.tracer
    return nullcontext() if tracer is None else tracer.span(name, attributes)


def client(name: str, **attributes: Any) -> Any:
    """``with client("lookup", ...)``: a call to another service (a CLIENT span), or nothing."""
    tracer = telemetry.tracer
    return nullcontext() if tracer is None else tracer.client(name, attributes)


def annotate(**attributes: Any) -> None:
    """Attributes on the current span (e.g. cache hits on ``lookups``), or nothing."""
    tracer = telemetry.tracer
    if tracer is not None:
        tracer.annotate(attributes)


@contextmanager
def event(name: str, header: Header | None, item: int | None = None,
          **attributes: Any) -> Iterator[None]:
    """An event (a message, an object, a Lambda record) handled inside: its log lines carry
    ``header``'s trace and ``item``; with tracing on, one span continuing that trace."""
    with continued(header, item):
        tracer = telemetry.tracer
        if tracer is None:
            yield
            return
        item = item if item is not None else ITEM.get()  # e.g. set by the Lambda adapter
        if item is not None:
            attributes["batch.item"] = item
        valid = header if header is not None and header[1] else None
        with tracer.span(name, attributes, valid):
            yield


def in_context(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` to run in a worker thread under the caller's span (tracing on), else itself."""
    if telemetry.tracer is None:
        return fn
    ctx = contextvars.copy_context()
    return lambda *args, **kwargs: ctx.run(fn, *args, **kwargs)


def outgoing() -> dict[str, str] | None:
    """Headers that propagate the current span to a service we call, or None."""
    tracer = telemetry.tracer
    return None if tracer is None else tracer.outgoing()
