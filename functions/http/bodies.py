"""Request bodies: declared media type, bounded reads, JSON parsing with named errors."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.requests import Request

from functions.errors import MalformedJSON, PayloadTooLarge, UnsupportedMediaType

JSON_TYPES = ("application/json",)


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
