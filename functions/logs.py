"""Log lines the platforms understand.

Cloud Run / Cloud Functions and Lambda read one JSON object per line: ``severity`` sets
the level in Cloud Logging (without it every stderr line shows as an error), ``message``
is the text, and ``logging.googleapis.com/labels`` are searchable labels. A line written
while a request or event is handled carries its trace (functions.telemetry.context: Cloud
Logging's trace fields, or X-Ray's ID on Lambda), the model served and, in a batch of
records, the item's index. Locally a short text line reads better. ``LOG_FORMAT=auto``
picks JSON when a platform is detected.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import orjson

from functions.config.settings import Settings
from functions.telemetry.context import Fields, log_fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the fields Cloud Logging and CloudWatch index."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"severity": record.levelname, "message": record.getMessage(),
                 "logger": record.name,
                 "logging.googleapis.com/sourceLocation": {
                     "file": record.pathname, "line": record.lineno,
                     "function": record.funcName}}
        entry.update(log_fields())
        if record.exc_info:
            entry["message"] += "\n" + self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def use_json(settings: Settings) -> bool:
    """JSON lines on a platform (or when asked), text otherwise."""
    if settings.log_format != "auto":
        return settings.log_format == "json"
    return bool(settings.k_service or settings.aws_lambda_function_name)


def describe_model(model: Callable[[], Any]) -> None:
    """Log lines name the model ``model()`` returns (one with a ``card``), or none."""
    def name_version() -> tuple[str, str] | None:
        served = model()
        return None if served is None else (served.card.name, served.card.version)

    Fields.model = name_version


def configure(settings: Settings) -> None:
    """The package's loggers at LOG_LEVEL, to stdout, unless the host configured logging."""
    pkg = logging.getLogger("functions")
    pkg.setLevel(settings.log_level.upper())
    if logging.getLogger().handlers or pkg.handlers:
        return
    handler = logging.StreamHandler(sys.stdout if use_json(settings) else sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json(settings)
                         else logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    pkg.addHandler(handler)
