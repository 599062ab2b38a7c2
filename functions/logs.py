"""Log lines the platforms understand.

Cloud Run / Cloud Functions and Lambda read one JSON object per line: ``severity`` sets
the level in Cloud Logging (without it every stderr line shows as an error), ``message``
is the text, and ``logging.googleapis.com/labels`` are searchable labels. Locally a short
text line reads better. ``LOG_FORMAT=auto`` picks JSON when a platform is detected.
"""

from __future__ import annotations

import logging
import sys

import orjson

from functions.config.settings import Settings


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the fields Cloud Logging and CloudWatch index."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"severity": record.levelname, "message": record.getMessage(),
                 "logger": record.name,
                 "logging.googleapis.com/sourceLocation": {
                     "file": record.pathname, "line": record.lineno,
                     "function": record.funcName}}
        if record.exc_info:
            entry["message"] += "\n" + self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def use_json(settings: Settings) -> bool:
    """JSON lines on a platform (or when asked), text otherwise."""
    if settings.log_format != "auto":
        return settings.log_format == "json"
    return bool(settings.k_service or settings.aws_lambda_function_name)


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
