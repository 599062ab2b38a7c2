"""A body that is one numeric matrix, ``{"instances": [[1.5, 2], [3, 4.25], ...]}``, read
straight into numpy: the common large batch of a tabular model, without a Python float
or list per value.

simdjson (pysimdjson) parses the body and copies every number of ``instances`` into one
float64 buffer in C, flattened. The shape is then checked on the bytes: the only string
is the one key and numbers hold no ``[``, ``]`` or ``,``, so the body's brackets and
commas, in order, must be exactly those of n rows of width values; a ragged row, a nested
list or a number among the rows cannot pass. Anything else (another key, a duplicate key, a
null, NaN, a number beyond a double, a BOM, invalid JSON) returns None and the body goes
through ``parse_json``, which accepts or names the problem exactly as before.
"""

from __future__ import annotations

import threading

import numpy as np
import simdjson

_local = threading.local()  # one parser per thread: a parser serves one document at a time
_NOT_STRUCTURAL = bytes(b for b in range(256) if b not in b"[],")


def _parser() -> simdjson.Parser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    return parser


def numeric_matrix(body: bytes, width: int) -> np.ndarray | None:
    """The (n, width) float64 matrix when ``body`` is exactly ``{"instances": M}`` with M
    an n x width matrix of JSON numbers; else None (see the module docstring)."""
    try:
        doc = _parser().parse(body)
        try:
            if not isinstance(doc, simdjson.Object) or len(doc) != 1:  # duplicates count
                return None
            rows = doc.get("instances")
            if not isinstance(rows, simdjson.Array):
                return None
            n = len(rows)
            flat = np.frombuffer(rows.as_buffer(of_type="d"), dtype=np.float64)
        finally:
            doc = rows = None  # the parser is reused only once no proxy refers to it
    except (ValueError, TypeError, RuntimeError):  # invalid JSON, too deep, not a number
        return None
    if n == 0 or len(flat) != n * width or not _is_matrix(body, n, width):
        return None
    return flat.reshape(n, width)


def _is_matrix(body: bytes, n: int, width: int) -> bool:
    """Whether the brackets and commas of ``body``, in order, are those of n rows of
    ``width`` values in one list (its only string is the one key, and numbers hold none)."""
    row = b"[" + b"," * (width - 1) + b"]"
    return body.translate(None, _NOT_STRUCTURAL) == b"[" + (row + b",") * (n - 1) + row + b"]"
