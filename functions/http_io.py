"""HTTP plumbing shared by every route: bounded body reads, JSON in/out, the error mapper."""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from functions.errors import MalformedJSON, PayloadTooLarge, ServingError, UnsupportedMediaType

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


def require_json(request: Request) -> None:
    """415 unless the body is declared JSON."""
    ctype = request.headers.get("content-type", "")
    media = ctype.split(";", 1)[0].strip().lower()
    if media not in JSON_TYPES and not media.endswith("+json"):
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, got {ctype or 'none'!r}")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) anything over ``limit`` without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """Parse JSON; NaN/Infinity literals are accepted here so validation can name the field."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:  # the stdlib parser reads NaN/Infinity, which JSON itself does not allow
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise MalformedJSON(f"body is not valid JSON: {exc}") from None
