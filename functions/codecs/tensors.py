"""Instances -> one array per graph input, for any signature (Vertex AI / TF Serving rows).

For a model with one input an instance is that input's value for one item: a number list,
a nested list for an image ([3, 32, 32]), a string for a string input (a bare value fits an
item shape of ``[1]``). For any model it may be an object keyed by input name. Each value
is checked against the graph: the item shape (the graph's shape without its batch axis;
dynamic axes take any size, the same across one batch), the dtype (no bool for a number,
no fraction for an integer, nothing out of the dtype's range, the card's NaN policy), and
every problem names the instance index and the input. A bad item never fails the others:
its row is zero-filled and reported in ``problems``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from functions.codecs.values import (
    accepts,
    beyond_float,
    holds_bool,
    out_of_range,
    refused_non_finite,
    what_it_holds,
)
from functions.errors import Problem


@dataclass(frozen=True)
class InputSpec:
    """One graph input as instances see it: name, dtype (None: strings), item shape."""

    name: str
    dtype: np.dtype | None
    item_shape: tuple[int | None, ...]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": "string" if self.dtype is None else self.dtype.name,
                "instance_shape": list(self.item_shape)}


def _fits(shape: tuple[int, ...], want: tuple[int | None, ...]) -> bool:
    return len(shape) == len(want) and all(w is None or s == w for s, w in zip(shape, want))


def split_by_input(instances: Sequence[Any], specs: Sequence[InputSpec],
                   problems: dict[int, list[Problem]]) -> dict[str, list[Any]]:
    """Per input, the value of every instance (None where the instance is unusable)."""
    names = [s.name for s in specs]
    single = len(specs) == 1
    if single and dict not in set(map(type, instances)):
        return {names[0]: list(instances)}
    columns: dict[str, list[Any]] = {name: [None] * len(instances) for name in names}
    for i, inst in enumerate(instances):
        if isinstance(inst, dict):
            found = [Problem("not an input of this model", i, k) for k in inst if k not in columns]
            found += [Problem("missing input", i, n) for n in names if n not in inst]
            if found:
                problems[i] = found[:5]
                continue
            for name in names:
                columns[name][i] = inst[name]
        elif single:
            columns[names[0]][i] = inst
        else:
            problems[i] = [Problem(f"this model takes {len(names)} inputs: send an object "
                                   f"keyed by input name {names}", i, "instances")]
    return columns


def decode_column(values: list[Any], spec: InputSpec, allow_nan: bool, may_hold_bools: bool,
                  problems: dict[int, list[Problem]]) -> np.ndarray:
    """One input's values as an array of ``len(values)`` rows; bad rows go to ``problems``."""
    if spec.dtype is None:
        return _strings(values, spec, problems)
    if not problems:
        whole = _column_at_once(values, spec, allow_nan, may_hold_bools)
        if whole is not None:
            return whole
    return _slow(values, spec, allow_nan, problems)


def _column_at_once(values: list[Any], spec: InputSpec, allow_nan: bool,
          may_hold_bools: bool) -> np.ndarray | None:
    """The whole column in one numpy call when every value is clean; else None."""
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError):
        return None
    if spec.item_shape == (1,) and arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    dtype = spec.dtype
    assert dtype is not None
    if not _fits(arr.shape[1:], spec.item_shape) or not accepts(dtype, arr):
        return None
    if dtype.kind != "b" and may_hold_bools and holds_bool(values):
        return None
    if out_of_range(arr, dtype):
        return None
    if beyond_float(arr, dtype) is not None:
        return None
    out = arr.astype(dtype, copy=False)
    if arr.dtype.kind == "f" and refused_non_finite(out.reshape(len(out), -1), allow_nan):
        return None
    return out


def _item_problem(value: Any, spec: InputSpec, allow_nan: bool) -> tuple[np.ndarray | None, str]:
    """(the value as an array of the input's dtype, "") or (None, what is wrong)."""
    dtype = spec.dtype
    assert dtype is not None
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        return None, "ragged nested lists"
    if spec.item_shape == (1,) and arr.ndim == 0:
        arr = arr.reshape(1)
    if not _fits(arr.shape, spec.item_shape):
        want = ["any" if d is None else d for d in spec.item_shape]
        return None, f"shape {list(arr.shape)} does not fit the input's {want}"
    if not accepts(dtype, arr):
        if dtype.kind in "iu" and arr.dtype.kind == "O":
            return None, f"a value is out of range for {dtype.name}"
        return None, f"{dtype.name} input cannot take {what_it_holds(arr)}"
    if dtype.kind != "b" and isinstance(value, list) and holds_bool(value):
        return None, f"{dtype.name} input cannot take booleans"
    if out_of_range(arr, dtype):
        return None, f"a value is out of range for {dtype.name}"
    if beyond_float(arr, dtype) is not None:
        return None, f"a value is out of range for {dtype.name}"
    with np.errstate(over="ignore"):
        out = arr.astype(dtype)
    if dtype.kind == "f" and not allow_nan and not np.isfinite(out).all():
        return None, "NaN, Infinity or out of range (the model needs finite values)"
    return out, ""


def _slow(values: list[Any], spec: InputSpec, allow_nan: bool,
          problems: dict[int, list[Problem]]) -> np.ndarray:
    """Item by item, naming each problem; dynamic axes take the first good item's size."""
    items: dict[int, np.ndarray] = {}
    shape: tuple[int, ...] | None = None
    for i, value in enumerate(values):
        if i in problems:
            continue
        arr, why = _item_problem(value, spec, allow_nan)
        if arr is not None and shape is not None and arr.shape != shape:
            arr, why = None, (f"shape {list(arr.shape)} differs from the batch's {list(shape)} "
                              "on a dynamic axis (send items of one size per request)")
        if arr is None:
            problems[i] = [Problem(why, i, spec.name)]
            continue
        shape = shape or arr.shape
        items[i] = arr
    fill = shape or tuple(d or 1 for d in spec.item_shape)
    out = np.zeros((len(values), *fill), dtype=spec.dtype)
    for i, arr in items.items():
        out[i] = arr
    return out


def _strings(values: list[Any], spec: InputSpec, problems: dict[int, list[Problem]]) -> np.ndarray:
    """String inputs of item shape [] or [1] (a bare string or a one-string list)."""
    if spec.item_shape not in ((), (1,), (None,)):
        raise ValueError(f"string input {spec.name} of item shape {spec.item_shape}")
    out = np.full(len(values), "", dtype=object)
    for i, value in enumerate(values):
        if i in problems:
            continue
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, str):
            out[i] = value
        else:
            problems[i] = [Problem(f"expected a string, got {type(value).__name__}", i,
                                   spec.name)]
    return out if spec.item_shape == () else out.reshape(-1, 1)
