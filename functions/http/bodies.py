"""Request bodies: declared media type, bounded reads, JSON parsing with named errors.

What ``parse_json`` accepts, for every route (the documented rules for extreme bodies):

- one UTF-8 byte order mark at the start is skipped (RFC 8259 lets a parser ignore it);
- nesting deeper than 1024 levels (orjson's limit; 512 with NaN/Infinity literals) is a
  400 naming the depth, decided without recursion;
- duplicate object keys: the last one wins (orjson and the stdlib agree);
- integers beyond 64 bits are read as floats (``18446744073709551617`` is a fine float32
  feature), numbers beyond a double (``1e999``) and NaN/Infinity literals as infinities
  and NaN, which validation then refuses or accepts by the card's NaN policy;
- invalid UTF-8 and lone UTF-16 surrogate escapes (``"\\ud800"``) are 400s.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from functions.errors import MalformedJSON, PayloadTooLarge, UnsupportedMediaType
from functions.http.json_fallback import stdlib_parse

JSON_TYPES = ("application/json",)
BOM = b"\xef\xbb\xbf"


def header_bytes(request: Request, name: bytes) -> bytes | None:
    """One request header's raw value (lower-case ``name``; the first, if sent twice), read
    from the ASGI scope directly."""
    for key, value in request.scope["headers"]:
        if key == name:
            return value
    return None


def require_json(request: Request) -> bytes | None:
    """415 unless the body is declared JSON. Returns the Content-Length header's raw value
    (for ``read_body``: one pass over the headers for both)."""
    ctype = declared = None
    for key, value in request.scope["headers"]:
        if key == b"content-type" and ctype is None:  # the first one, as ``header_bytes`` reads
            ctype = value.decode("latin-1")
        elif key == b"content-length" and declared is None:
            declared = value
    media = ctype.split(";", 1)[0].strip().lower() if ctype else ""
    if media not in JSON_TYPES and not media.endswith("+json"):
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, got {ctype or 'none'!r}")
    return declared


async def read_body(request: Request, limit: int, declared: bytes | None = None) -> bytes:
    """The whole body, refusing (413) anything over ``limit`` without reading it all.
    ``declared``: the Content-Length header when the caller has it (``require_json``)."""
    if declared is None:
        declared = header_bytes(request, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared.decode()} bytes is over the {limit}-byte "
                              "limit")
    chunks: list[bytes] = []
    size = 0
    receive = request.receive  # the ASGI messages themselves: no generator per request
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def may_hold_bools(body: bytes) -> bool:
    """Whether the instances of a JSON ``body`` may hold ``true``/``false``, from its bytes.

    Whatever a request's instances hold lies after the body's first ``[``: with no ``t``
    and no ``f`` from there on (two memchr scans), there is no boolean; otherwise the whole
    body is searched for the words. Errs on the safe side (a ``true`` in a string counts).
    """
    start = body.find(b"[")
    if start < 0:
        return False
    return (body.find(b"t", start) >= 0 and b"true" in body) or \
        (body.find(b"f", start) >= 0 and b"false" in body)


def parse_json(body: bytes) -> Any:
    """The parsed body, or MalformedJSON (400) saying why not; see the module docstring.

    NaN/Infinity literals are accepted here so that validation can name the field.
    """
    if body.startswith(BOM):
        body = body[len(BOM):]
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise MalformedJSON("body is nested more than 1024 levels deep") from None
        try:  # the stdlib reads NaN/Infinity and 1e999, which orjson refuses
            return stdlib_parse(body)
        except ValueError as fallback:
            why = fallback if "nested" in str(fallback) or "surrogate" in str(fallback) else exc
            raise MalformedJSON(f"body is not valid JSON: {why}") from None
