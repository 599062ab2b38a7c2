"""Responses: orjson bodies, and ``error_response``, the one mapper from exceptions to answers."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.responses import Response

from functions.errors import ServingError

log = logging.getLogger(__name__)


class JSONBytes(Response):
    """A response whose JSON body is already bytes: headers built directly as ASGI raw
    headers (Starlette's generic header handling costs more than the whole small answer)."""

    media_type = "application/json"

    def __init__(self, body: bytes, status: int = 200,
                 headers: dict[str, str] | None = None) -> None:
        self.body = body
        self.status_code = status
        self.background = None
        raw = [(b"content-length", str(len(body)).encode()),
               (b"content-type", b"application/json")]
        if headers:
            raw += [(k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in headers.items()]
        self.raw_headers = raw


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """orjson-encoded response (numpy arrays and scalars serialise natively)."""
    return JSONBytes(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status, headers)


def error_response(exc: BaseException) -> Response:
    """The one mapper from exceptions to responses. Anything not a ServingError is a bug: 500."""
    if isinstance(exc, ServingError):
        if exc.status >= 500:
            log.warning("%s %s", exc.status, exc.message)
        return json_response(exc.body(), exc.status, exc.headers)
    log.exception("unhandled error", exc_info=exc)
    return json_response({"error": {"status": 500, "code": "internal",
                                    "message": "internal error (logged)"}}, 500)
