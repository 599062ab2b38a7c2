"""Request bodies as the transport gives them: the declared media type, bounded reads.

What the bytes mean is the codecs' business (functions.codecs); JSON text rules are in
functions.codecs.json_text.
"""

from __future__ import annotations

from starlette.requests import Request

from functions.errors import ClientGone, PayloadTooLarge, UnsupportedMediaType


def header_bytes(request: Request, name: bytes) -> bytes | None:
    """One request header's raw value (lower-case ``name``; the first, if sent twice), read
    from the ASGI scope directly."""
    for key, value in request.scope["headers"]:
        if key == name:
            return value
    return None


def require_json(request: Request) -> bytes | None:
    """415 unless the body is declared JSON or not declared at all (Vertex AI's rawPredict
    forwards ``gcloud ai endpoints raw-predict``'s body without a Content-Type). Returns the
    Content-Length header's raw value (for ``read_body``: one pass over the headers for
    both)."""
    raw = declared = None
    for key, value in request.scope["headers"]:
        if key == b"content-type" and raw is None:  # the first one, as ``header_bytes`` reads
            raw = value
        elif key == b"content-length" and declared is None:
            declared = value
    if raw is None or raw == b"application/json":
        return declared
    ctype = raw.decode("latin-1")
    media = ctype.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(f"Content-Type must be application/json, got {ctype!r}")
    return declared


async def read_body(request: Request, limit: int, declared: bytes | None = None) -> bytes:
    """The whole body, refusing (413) anything over ``limit`` without reading it all.
    ``declared``: the Content-Length header when the caller has it (``require_json``)."""
    if declared is None:
        declared = header_bytes(request, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared.decode()} bytes is over the {limit}-byte "
                              "limit")
    receive = request.receive  # the ASGI messages themselves: no generator per request
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone("the client closed the connection before its body was read")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
