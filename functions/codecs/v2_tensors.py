"""Open Inference Protocol tensors: v2 datatypes <-> numpy, JSON ``data`` and raw bytes.

Contracts:
- ``from_json`` and ``from_binary`` return an array of exactly ``shape`` and the numpy dtype
  of ``datatype``, or raise RequestError (400) naming the input. Values are never coerced
  across kinds: a bool is not a number, a float is not an integer, an out-of-range integer
  is refused rather than wrapped.
- ``from_binary`` wraps the request bytes without copying (``np.frombuffer``); binary data
  is little-endian, row-major, and BYTES elements carry a 4-byte little-endian length prefix
  (Triton's binary tensor data extension).
- ``to_binary`` is the inverse of ``from_binary``; ``to_json`` gives a flat row-major list.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from functions.codecs.values import (
    accepts,
    all_ints,
    beyond_float,
    holds_bool,
    out_of_range,
    what_it_holds,
)
from functions.errors import RequestError

V2_TO_NUMPY: dict[str, str] = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32",
    "UINT64": "uint64", "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64", "BYTES": "str",
}
NUMPY_TO_V2: dict[str, str] = {v: k for k, v in V2_TO_NUMPY.items()}
_U32 = struct.Struct("<I")


def v2_datatype(numpy_name: str) -> str:
    """The v2 datatype of a model tensor's numpy dtype name (unknown types pass through)."""
    return NUMPY_TO_V2.get(numpy_name, numpy_name.upper())


def numpy_dtype(datatype: str, where: str) -> np.dtype | None:
    """numpy dtype for a v2 datatype (None for BYTES); 400 for a datatype we do not know."""
    name = V2_TO_NUMPY.get(datatype)
    if name is None:
        raise RequestError(f"{where}: unknown datatype {datatype!r}; "
                           f"use one of {', '.join(V2_TO_NUMPY)}")
    return None if name == "str" else np.dtype(name).newbyteorder("<")


def element_count(shape: list[int]) -> int:
    return math.prod(shape)


def from_json(where: str, datatype: str, shape: list[int], data: Any,
              may_hold_bools: bool) -> np.ndarray:
    """The tensor given inline as a JSON array (flat or nested, row-major)."""
    if not isinstance(data, list):
        raise RequestError(f"{where}: 'data' must be a JSON array, got {type(data).__name__}")
    dtype = numpy_dtype(datatype, where)
    if dtype is None:
        return _bytes_from_json(where, shape, data)
    try:
        arr = np.asarray(data)
    except ValueError:
        raise RequestError(f"{where}: 'data' is ragged (nested lists of unequal length)") from None
    if arr.size != element_count(shape):
        raise RequestError(f"{where}: shape {shape} holds {element_count(shape)} elements "
                           f"but 'data' has {arr.size}")
    if not accepts(dtype, arr):
        if dtype.kind in "iu" and all_ints(data):  # numpy fell back to float/object
            raise RequestError(f"{where}: values out of range for {datatype}")
        raise RequestError(f"{where}: datatype {datatype} cannot hold {what_it_holds(arr)}")
    if dtype.kind != "b" and may_hold_bools and holds_bool(data):
        raise RequestError(f"{where}: datatype {datatype} cannot hold booleans")
    if out_of_range(arr, dtype) or beyond_float(arr, dtype) is not None:
        raise RequestError(f"{where}: values out of range for {datatype}")
    return arr.astype(dtype, copy=False).reshape(shape)


def _bytes_from_json(where: str, shape: list[int], data: list[Any]) -> np.ndarray:
    try:
        flat = np.asarray(data, dtype=object).reshape(-1) if data else \
            np.empty(0, dtype=object)
    except ValueError:
        flat = None
    if flat is None or any(type(v) is list for v in flat.tolist()):
        raise RequestError(f"{where}: 'data' is ragged (nested lists of unequal length)")
    if flat.size != element_count(shape):
        raise RequestError(f"{where}: shape {shape} holds {element_count(shape)} elements "
                           f"but 'data' has {flat.size}")
    if not all(isinstance(v, str) for v in flat.tolist()):
        raise RequestError(f"{where}: datatype BYTES takes strings in 'data'")
    return flat.reshape(shape)


def from_binary(where: str, datatype: str, shape: list[int], raw: memoryview) -> np.ndarray:
    """The tensor sent as raw bytes after the JSON header (binary tensor data extension)."""
    dtype = numpy_dtype(datatype, where)
    count = element_count(shape)
    if dtype is None:
        return _bytes_from_binary(where, shape, raw)
    if len(raw) != count * dtype.itemsize:
        raise RequestError(f"{where}: binary_data_size is {len(raw)} bytes but shape {shape} "
                           f"of {datatype} needs {count * dtype.itemsize}")
    if dtype.kind == "b":
        octets = np.frombuffer(raw, dtype=np.uint8, count=count)
        if count and octets.max() > 1:
            raise RequestError(f"{where}: BOOL bytes must be 0 or 1")
        return octets.view(np.bool_).reshape(shape)
    return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape)


def _bytes_from_binary(where: str, shape: list[int], raw: memoryview) -> np.ndarray:
    items: list[str] = []
    pos, end = 0, len(raw)
    while pos < end:
        if pos + 4 > end:
            raise RequestError(f"{where}: BYTES data ends inside a length prefix")
        (size,) = _U32.unpack_from(raw, pos)
        if pos + 4 + size > end:
            raise RequestError(f"{where}: BYTES element {len(items)} runs past binary_data_size")
        try:
            items.append(bytes(raw[pos + 4: pos + 4 + size]).decode())
        except UnicodeDecodeError:
            raise RequestError(f"{where}: BYTES element {len(items)} is not UTF-8") from None
        pos += 4 + size
    if len(items) != element_count(shape):
        raise RequestError(f"{where}: shape {shape} holds {element_count(shape)} elements "
                           f"but the binary data has {len(items)}")
    return np.asarray(items, dtype=object).reshape(shape)


def to_binary(arr: np.ndarray) -> bytes:
    """Raw little-endian row-major bytes (length-prefixed elements for strings)."""
    if arr.dtype.kind in "OSU":
        parts = []
        for v in arr.reshape(-1).tolist():
            b = v if isinstance(v, bytes) else str(v).encode()
            parts.append(_U32.pack(len(b)) + b)
        return b"".join(parts)
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()


def to_json(arr: np.ndarray) -> Any:
    """Flat row-major data: a contiguous array orjson writes natively, or a list of strings."""
    if arr.dtype.kind in "OSU":
        return [v.decode() if isinstance(v, bytes) else v for v in arr.reshape(-1).tolist()]
    return np.ascontiguousarray(arr).reshape(-1)
