"""Trace context for log lines (always on, cheap); OpenTelemetry only when configured.

    context.py   the incoming trace header of a request or event, kept as received in a
                 context variable and parsed only when a log line is written; the fields
                 Cloud Logging and CloudWatch read (``log_fields``)
    project.py   the Google Cloud project that trace names need, read once per process
    tracing.py   OpenTelemetry spans exported over OTLP/HTTP; imported only when
                 OTEL_TRACES_EXPORTER names an exporter, so the SDK is never imported when
                 tracing is off
    spans.py     the span helpers the serving code calls; each is a no-op behind one
                 ``tracer is None`` check when tracing is off

``tracer`` is None unless tracing is on (``start`` turns it on after the fork).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from functions.config.settings import Settings
    from functions.telemetry.tracing import Tracing

tracer: Tracing | None = None
"""The process's OpenTelemetry tracing, or None (off: the default)."""


def start(settings: Settings) -> None:
    """Once per serving process, after the fork: find the project ID (off the request path)
    and turn tracing on when the OTEL_* settings ask for it. Calling it again is a no-op."""
    global tracer
    from functions.telemetry import project

    project.discover(settings)
    if tracer is None and settings.otel_traces_exporter not in ("none", "") \
            and not settings.otel_sdk_disabled:
        try:
            from functions.telemetry.tracing import Tracing  # the SDK: imported only now
        except ImportError as exc:  # serving untraced beats not serving
            logging.getLogger(__name__).error(
                "OTEL_TRACES_EXPORTER=%s but the OpenTelemetry SDK is not installed (%s): "
                "serving without traces; install requirements-tracing.txt",
                settings.otel_traces_exporter, exc)
            return
        tracer = Tracing.from_settings(settings)
