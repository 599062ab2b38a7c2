"""The trace a request or event belongs to, for its log lines.

Adapters put the incoming trace header in ``HEADER`` as received, a ``(name, value)``
pair, and parse nothing: a request whose handling writes no log line pays one scan of its
headers and one context-variable set. ``log_fields`` parses it (cached) when a line is
written. Headers, as the platforms document them:

- ``traceparent`` (W3C Trace Context): ``00-<32 hex trace id>-<16 hex span id>-<flags>``,
  sampled when bit 0 of the flags is set; also a CloudEvent's ``traceparent`` extension
  and a Pub/Sub message's ``googclient_traceparent`` attribute (what google-cloud-pubsub
  writes with its publisher tracing on) or ``googclient_OpenTelemetryTraceParent``;
- ``X-Cloud-Trace-Context``: ``<32 hex trace id>/<decimal span id>;o=<1: sampled>``;
- ``_X_AMZN_TRACE_ID`` on Lambda and SQS's ``AWSTraceHeader`` (X-Ray):
  ``Root=1-<8 hex time>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>``.

Log fields: Cloud Logging's ``logging.googleapis.com/trace`` (``projects/P/traces/T``; the
bare trace ID while no project is known), ``logging.googleapis.com/spanId`` (16 hex) and
``logging.googleapis.com/trace_sampled``; from X-Ray, ``xray_trace_id`` (the ID X-Ray and
CloudWatch search by). ``ITEM`` is the index of the record being handled in a batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

Header = tuple[Any, Any]
"""``(name, value)``: bytes straight from the ASGI scope, or str."""

HEADER: ContextVar[Header | None] = ContextVar("trace_header", default=None)
ITEM: ContextVar[int | None] = ContextVar("trace_item", default=None)

TRACEPARENT = "traceparent"
CLOUD_TRACE = "x-cloud-trace-context"
XRAY = "x-amzn-trace-id"
PUBSUB_ATTRIBUTES = ("googclient_traceparent", "googclient_OpenTelemetryTraceParent")
SQS_ATTRIBUTE = "AWSTraceHeader"
_HEX = frozenset("0123456789abcdef")


class TraceIds:
    """A parsed trace header: W3C ids (hex), the sampling flag, the X-Ray form if any. (A
    plain class: a dataclass would cost every cold start about a millisecond to build.)"""

    __slots__ = ("trace", "span", "sampled", "xray")

    def __init__(self, trace: str, span: str | None, sampled: bool | None,
                 xray: str | None = None) -> None:
        self.trace, self.span, self.sampled, self.xray = trace, span, sampled, xray


def _hex(value: str, length: int) -> bool:
    return len(value) == length and _HEX.issuperset(value) and value != "0" * length


def traceparent(value: str) -> TraceIds | None:
    parts = value.strip().lower().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff" \
            or not _hex(parts[1], 32) or not _hex(parts[2], 16) or len(parts[3]) != 2:
        return None
    try:
        flags = int(parts[3], 16)
    except ValueError:
        return None
    return TraceIds(parts[1], parts[2], bool(flags & 1))


def cloud_trace(value: str) -> TraceIds | None:
    trace, _, rest = value.strip().partition("/")
    trace = trace.lower()
    if not _hex(trace, 32):
        return None
    span_part, _, options = rest.partition(";")
    span = None
    if span_part.isdigit() and 0 < int(span_part) < 1 << 64:
        span = f"{int(span_part):016x}"
    sampled = None
    if options.startswith("o="):
        sampled = options[2:3] == "1"
    return TraceIds(trace, span, sampled)


def xray(value: str) -> TraceIds | None:
    fields = dict(p.partition("=")[::2] for p in value.strip().split(";") if "=" in p)
    root = fields.get("Root", "")
    version, _, rest = root.partition("-")
    epoch, _, unique = rest.partition("-")
    if version != "1" or not _hex(epoch.lower(), 8) or not _hex(unique.lower(), 24):
        return None
    parent = fields.get("Parent", "").lower()
    sampled = {"1": True, "0": False}.get(fields.get("Sampled", ""))
    return TraceIds((epoch + unique).lower(), parent if _hex(parent, 16) else None, sampled,
                    root)


_PARSERS: dict[str, Callable[[str], TraceIds | None]] = {
    TRACEPARENT: traceparent, CLOUD_TRACE: cloud_trace, XRAY: xray}


@lru_cache(maxsize=512)
def parse(header: Header) -> TraceIds | None:
    """The ids in ``header`` (None when it is malformed: the line is written without)."""
    name, value = header
    name = name.decode("latin-1") if isinstance(name, bytes) else name
    value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    parser = _PARSERS.get(name.lower())
    return parser(value) if parser is not None else None


def find(headers: list[tuple[bytes, bytes]]) -> Header | None:
    """The trace header of an ASGI request (names are lower case there): ``traceparent``
    wins over ``x-cloud-trace-context`` (Cloud Run sends both, for the same trace)."""
    found = None
    for pair in headers:
        name = pair[0]
        if name == b"traceparent":
            return pair
        if name == b"x-cloud-trace-context":
            found = pair
    return found


@contextmanager
def continued(header: Header | None, item: int | None = None) -> Iterator[None]:
    """Log lines written inside carry ``header``'s trace (kept as it was when None) and
    ``item``; both are put back on exit (event handlers run on reused threads)."""
    token = HEADER.set(header) if header is not None and header[1] else None
    item_token = ITEM.set(item) if item is not None else None
    try:
        yield
    finally:
        if item_token is not None:
            ITEM.reset(item_token)
        if token is not None:
            HEADER.reset(token)


def lambda_header() -> Header | None:
    """The X-Ray trace of the Lambda invocation running now. The runtime sets
    ``_X_AMZN_TRACE_ID`` anew for each invocation, so it is read per call, not once as
    functions.config.settings reads the rest of the environment."""
    value = os.environ.get("_X_AMZN_TRACE_ID")
    return (XRAY, value) if value else None


def message_header(attributes: Any) -> Header | None:
    """The trace a message carries: Pub/Sub's ``googclient_*`` attributes, SQS's
    ``AWSTraceHeader`` (kept under ``sqs`` by functions.aws.records)."""
    if not attributes:
        return None
    for name in PUBSUB_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str) and value:
            return TRACEPARENT, value
    system = attributes.get("sqs")
    value = system.get(SQS_ATTRIBUTE) if isinstance(system, dict) else None
    return (XRAY, value) if isinstance(value, str) and value else None


class Fields:
    """What ``log_fields`` adds besides the trace: set once per process."""

    project: str | None = None
    """The Google Cloud project (functions.telemetry.project), for trace resource names."""
    model: Callable[[], tuple[str, str] | None] = staticmethod(lambda: None)
    """(name, version) of the model being served, or None while none is."""
    current: Callable[[], TraceIds | None] | None = None
    """With tracing on: the ids of the span current where the line is written."""


def log_fields() -> dict[str, Any]:
    """The trace, model and item fields of a log line written now (empty when none)."""
    entry: dict[str, Any] = {}
    ids = Fields.current() if Fields.current is not None else None
    if ids is None:
        header = HEADER.get()
        ids = parse(header) if header is not None else None
    if ids is not None:
        if ids.xray is not None:
            entry["xray_trace_id"] = ids.xray
        else:
            project = Fields.project
            entry["logging.googleapis.com/trace"] = \
                f"projects/{project}/traces/{ids.trace}" if project else ids.trace
            if ids.span is not None:
                entry["logging.googleapis.com/spanId"] = ids.span
            if ids.sampled is not None:
                entry["logging.googleapis.com/trace_sampled"] = ids.sampled
    model = Fields.model()
    if model is not None:
        entry["model"], entry["model_version"] = model
    item = ITEM.get()
    if item is not None:
        entry["item"] = item
    return entry
