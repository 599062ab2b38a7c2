"""JSON text -> Python values, with named errors: the rules every JSON codec shares.

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

from functions.codecs.json_fallback import stdlib_parse
from functions.errors import MalformedJSON

BOM = b"\xef\xbb\xbf"


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
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as first:
        exc = first
    if body.startswith(BOM):  # orjson refuses the mark (looked for only now: the common
        body = body[len(BOM):]  # body pays nothing for it)
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as again:
            exc = again
    if "depth limit" in str(exc):
        raise MalformedJSON("body is nested more than 1024 levels deep") from None
    try:  # the stdlib reads NaN/Infinity and 1e999, which orjson refuses
        return stdlib_parse(body)
    except ValueError as fallback:
        why = fallback if "nested" in str(fallback) or "surrogate" in str(fallback) else exc
        raise MalformedJSON(f"body is not valid JSON: {why}") from None
