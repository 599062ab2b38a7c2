"""The stdlib parse behind orjson, for what orjson refuses but we accept, made safe.

orjson refuses ``NaN``, ``Infinity`` and ``-Infinity`` literals and numbers that overflow a
double (``1e999``); the stdlib reads them, so validation can name the field that holds
one. That parse must not become the weak spot orjson is not:

- depth: the stdlib's C scanner recurses once per nesting level. ``nesting_depth``
  measures the body's depth first, without parsing and without recursion (vectorised over
  the bytes), and bodies deeper than ``FALLBACK_MAX_DEPTH`` are refused before it runs;
- encoding: the body is decoded as strict UTF-8 (the stdlib would also guess UTF-16/32);
- lone surrogates: ``"\\ud800"`` is legal to the stdlib and unencodable everywhere after
  (orjson, logs); ``lone_surrogate`` finds one with an explicit stack, no recursion;
- integers: read as orjson reads them (a Python int within 64 bits, a float beyond), so
  ``18446744073709551617`` is the same number whichever parser read the body.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

FALLBACK_MAX_DEPTH = 512
"""Deepest nesting the stdlib parse is given (well inside Python's recursion limit)."""

_QUOTE, _BACKSLASH, _OPEN, _CLOSE = 1, 2, 3, 4
_CODES = np.zeros(256, dtype=np.int8)  # byte -> what it is to the depth scan (0: nothing)
for _byte, _code in ((b'"', _QUOTE), (b"\\", _BACKSLASH), (b"[", _OPEN), (b"{", _OPEN),
                     (b"]", _CLOSE), (b"}", _CLOSE)):
    _CODES[ord(_byte)] = _code
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_INT64 = (-(1 << 63), (1 << 64) - 1)


def nesting_depth(body: bytes) -> int:
    """The deepest ``[``/``{`` nesting of ``body`` outside strings (for any bytes: garbage
    gives a number too, never an error). No Python loop over the body, no recursion: numpy
    works on the positions of the few bytes that matter (quotes, backslashes, brackets)."""
    codes = _CODES[np.frombuffer(body, dtype=np.uint8)]
    pos = np.flatnonzero(codes)
    sym = codes[pos]
    # a quote is escaped when an odd run of adjacent backslashes stands right before it
    slash = sym == _BACKSLASH
    joined = np.zeros(len(pos), dtype=bool)
    joined[1:] = slash[1:] & slash[:-1] & (np.diff(pos) == 1)
    k = np.arange(len(pos))
    run = k - np.maximum.accumulate(np.where(joined, -1, k)) + 1  # backslash run ending at k
    quote = np.flatnonzero(sym == _QUOTE)
    prev = np.maximum(quote - 1, 0)
    escaped = (quote > 0) & slash[prev] & (pos[prev] == pos[quote] - 1) & (run[prev] % 2 == 1)
    toggles = np.zeros(len(pos), dtype=np.int8)
    toggles[quote[~escaped]] = 1
    inside = np.cumsum(toggles, dtype=np.int64) % 2 == 1  # a real quote opens or closes
    steps = (sym == _OPEN).astype(np.int64) - (sym == _CLOSE)
    steps[inside] = 0
    return int(np.cumsum(steps).max(initial=0))


def deeper_than(body: bytes, limit: int) -> int | None:
    """``nesting_depth(body)`` when it is over ``limit``, else None; free when the body
    holds no more than ``limit`` brackets in all (most bodies)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return None
    depth = nesting_depth(body)
    return depth if depth > limit else None


def lone_surrogate(value: Any) -> bool:
    """Whether any string (or object key) in the parsed ``value`` holds a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
    return False


def _integer(text: str) -> int | float:
    """An integer literal as orjson reads it (an int within 64 bits, else a float); one
    past a double stays an int, so validation says "out of range" rather than "inf"
    (past int()'s 4300-digit limit it is an infinity)."""
    digits = len(text.lstrip("-"))
    if digits <= 20:
        number = int(text)
        if _INT64[0] <= number <= _INT64[1]:
            return number
    wide = float(text)
    if math.isfinite(wide) or digits > 4300:
        return wide
    return int(text)


def stdlib_parse(body: bytes) -> Any:
    """Parse ``body`` with the stdlib (NaN/Infinity literals allowed).

    Raises ValueError naming the problem: too deep, not UTF-8, not JSON, a lone surrogate.
    """
    depth = deeper_than(body, FALLBACK_MAX_DEPTH)
    if depth is not None:
        raise ValueError(f"nested {depth} levels deep; bodies with NaN or Infinity literals "
                         f"may nest at most {FALLBACK_MAX_DEPTH}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        value = json.loads(text, parse_int=_integer)
    except RecursionError:  # pragma: no cover - the depth check above keeps it away
        raise ValueError("nested too deeply") from None
    if _SURROGATE_ESCAPE.search(body) and lone_surrogate(value):
        raise ValueError("a string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff)")
    return value
