"""Responses: orjson bodies, and ``error_response``, the one mapper from exceptions to answers."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.responses import Response

from functions.errors import ServingError

log = logging.getLogger(__name__)
JSON_TYPES = ("application/json",)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """orjson-encoded response (numpy arrays and scalars serialise natively)."""
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status,
                    headers=headers, media_type="application/json")


def error_response(exc: BaseException) -> Response:
    """The one mapper from exceptions to responses. Anything not a ServingError is a bug: 500."""
    if isinstance(exc, ServingError):
        if exc.status >= 500:
            log.warning("%s %s", exc.status, exc.message)
        return json_response(exc.body(), exc.status, exc.headers)
    log.exception("unhandled error", exc_info=exc)
    return json_response({"error": {"status": 500, "code": "internal",
                                    "message": "internal error (logged)"}}, 500)
