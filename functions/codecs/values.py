"""The value rules: which JSON values an input of a given dtype takes, and the JSON Schema
that says so. Every codec (rows, tensors, text, Open Inference Protocol) and the OpenAPI
document use these, so a rule is written once.

- A number input takes JSON numbers only: never a boolean (numpy would make it 1 or 0),
  a string or a null (a null is NaN where the card allows NaN, for row features).
- An integer input takes integers only, within the dtype's range: never a fraction, and
  an out-of-range value is refused rather than wrapped.
- A float input takes numbers within its dtype's range (``beyond_float``: a number past
  it is refused, never rounded to the largest float or overflowed to infinity); NaN and
  infinities (JSON has no such numbers; the literals some clients send) are refused
  unless the card allows NaN.
- An integer input also takes a float without a fraction (``5.0``: JSON Schema calls it
  an integer too).
- A boolean input takes booleans only; a string input strings only.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

ACCEPTS = {"f": "iuf", "i": "iu", "u": "iu", "b": "b"}
"""The numpy kinds of ``np.asarray(json values)`` that an input of each dtype kind takes."""
_KIND_WORDS = {"U": "strings", "O": "nulls or mixed values", "b": "booleans",
               "f": "non-integers"}


def accepts(dtype: np.dtype, values: np.ndarray) -> bool:
    """Whether JSON values read into ``values`` (by ``np.asarray``) are of a kind ``dtype``
    takes (an empty array always is)."""
    if not values.size or values.dtype.kind in ACCEPTS.get(dtype.kind, ""):
        return True
    return dtype.kind in "iu" and values.dtype.kind == "f" and bool(
        np.isfinite(values).all() and (values == np.trunc(values)).all())


def what_it_holds(values: np.ndarray) -> str:
    """Words for the kind of values ``dtype`` refused ("strings", "booleans", ...)."""
    return _KIND_WORDS.get(values.dtype.kind, values.dtype.name)


def holds_bool(data: list[Any]) -> bool:
    """Whether a (nested) list holds a bool; numpy would quietly make it 1 or 0. Walks
    with a stack, not recursion: the depth is the caller's to choose."""
    stack = [data]
    while stack:
        level = stack.pop()
        kinds = set(map(type, level))  # one C-speed pass per level, no per-element Python
        if bool in kinds:
            return True
        if list in kinds:
            stack.extend(v for v in level if type(v) is list)
    return False


def all_ints(data: Any) -> bool:
    """Whether every leaf of a nested list is an int (numpy made them float or object
    because one is beyond 64 bits)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif type(item) is not int:
            return False
    return True


def out_of_range(values: np.ndarray, dtype: np.dtype) -> bool:
    """Whether integer ``values`` hold one outside ``dtype``'s range."""
    if not values.size or dtype.kind not in "iu":
        return False
    info = np.iinfo(dtype)
    low, high = values.min(), values.max()
    if values.dtype.kind == "f":  # Python compares a float with an int exactly
        low, high = float(low), float(high)
    return bool(low < info.min or high > info.max)


@lru_cache(maxsize=16)
def float_max(dtype: np.dtype) -> float:
    """The largest finite value of float ``dtype`` (``np.finfo`` costs microseconds a call)."""
    return float(np.finfo(dtype).max)


def within_float(values: np.ndarray, dtype: np.dtype) -> bool:
    """Whether every one of the (numeric) ``values`` is finite and within float ``dtype``'s
    range, so a cast to ``dtype`` keeps every value finite. Two reductions, no temporary
    array: a NaN makes both bounds NaN, which fails the comparisons."""
    if not values.size:
        return True
    top = float_max(dtype)
    return bool(-top <= values.min() and values.max() <= top)


def beyond_float(values: np.ndarray, dtype: np.dtype) -> np.ndarray | None:
    """Where finite float ``values`` lie beyond float ``dtype``'s range (a cast would round
    them to its largest value or overflow them to infinity): a boolean mask, or None when
    none does (the common case: ``within_float``'s two reductions)."""
    if dtype.kind != "f" or values.dtype.kind != "f" or not values.size:
        return None
    top = float_max(dtype)
    if top >= float_max(values.dtype) or within_float(values, dtype):
        return None
    with np.errstate(invalid="ignore"):
        beyond = np.abs(values) > top  # NaN compares False; infinities are no numbers
    beyond &= np.isfinite(values)
    return beyond if beyond.any() else None


def refused_non_finite(matrix: np.ndarray, allow_nan: bool) -> tuple[int, int] | None:
    """(row, column) of the first NaN/Infinity the card's policy refuses, or None."""
    if allow_nan or matrix.dtype.kind != "f":
        return None
    finite = np.isfinite(matrix)
    if finite.all():
        return None
    row, col = np.argwhere(~finite)[0].tolist()
    return row, col


def read_number(value: Any, allow_nan: bool) -> tuple[float, str]:
    """(the value as a float, "") for a JSON number a float feature takes, or (NaN, what is
    wrong); a null is NaN where the card allows NaN."""
    if value is None and allow_nan:
        return math.nan, ""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return math.nan, f"expected a number, got {type(value).__name__}"
    try:
        number = float(value)
    except OverflowError:  # an integer literal beyond any float
        return math.nan, "number out of range"
    if not allow_nan and not math.isfinite(number):
        return math.nan, f"{value} is not allowed (the model needs finite values)"
    return number, ""


def to_python(values: np.ndarray) -> list[Any]:
    """Array -> JSON-ready Python values (strings decoded, numpy scalars unboxed)."""
    if values.dtype.kind in "SO":
        return [v.decode() if isinstance(v, bytes) else v for v in values.tolist()]
    return values.tolist()


def value_schema(dtype: str, allow_nan: bool = False) -> dict[str, Any]:
    """The JSON Schema of one value an input of numpy ``dtype`` takes (the rules above;
    ``string`` for text inputs). A JSON number beyond a float dtype's range is refused,
    so the range is stated; NaN is no JSON number, so ``allow_nan`` adds null."""
    if dtype in ("string", "str", "object"):
        return {"type": "string"}
    kind = np.dtype(dtype)
    if kind.kind == "b":
        return {"type": "boolean"}
    if kind.kind in "iu":
        info = np.iinfo(kind)
        return {"type": "integer", "minimum": int(info.min), "maximum": int(info.max)}
    top = float(np.finfo(kind).max)
    return {"type": ["number", "null"] if allow_nan else "number",
            "minimum": -top, "maximum": top}
