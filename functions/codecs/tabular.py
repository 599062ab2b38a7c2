"""Instances (JSON rows) -> one numpy matrix for the model's row input, validated.

An instance is a list in feature order or an object keyed by feature name. The fast path
hands the whole list to numpy at once; only when that fails (or finds non-finite values)
do we walk rows to say which instance and which field is wrong.

The value rules (numbers, NaN policy, booleans) are functions.codecs.values'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from functions.codecs.values import (
    beyond_float,
    float_max,
    holds_bool,
    read_number,
    refused_non_finite,
    within_float,
)
from functions.errors import Problem

FEW_ROWS = 4
"""Up to this many rows, ``clean_rows``'s plain Python checks beat numpy's call overhead."""


@dataclass(frozen=True)
class Schema:
    """What a row must look like: ordered feature names, numeric dtype, NaN policy."""

    feature_names: tuple[str, ...]
    dtype: np.dtype
    allow_nan: bool = False
    optional: frozenset[str] = frozenset()
    """Features that may be absent from an instance (filled later, e.g. by lookups)."""
    extra_fields: frozenset[str] = frozenset()
    """Object keys that are not features but allowed (and ignored here), e.g. lookup keys."""
    width: int = field(init=False)
    """How many features a row has."""
    limit: float = field(init=False)
    """The largest magnitude the dtype holds (float dtypes; 0.0 for others)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "width", len(self.feature_names))
        object.__setattr__(self, "limit", float_max(self.dtype)
                           if self.dtype.kind == "f" else 0.0)


@dataclass
class Decoded:
    """A matrix with one row per instance; ``problems`` maps bad row index -> what is wrong."""

    matrix: np.ndarray
    problems: dict[int, list[Problem]]


def _cell(value: Any, index: int, name: str, schema: Schema, out: list[Problem]) -> float:
    number, why = read_number(value, schema.allow_nan)
    if why:
        out.append(Problem(why, index, name))
    return number


def _decode_row(row: Any, index: int, schema: Schema) -> tuple[list[float], list[Problem]]:
    problems: list[Problem] = []
    names = schema.feature_names
    if isinstance(row, dict):
        unknown = [k for k in row if k not in names and k not in schema.extra_fields]
        for key in unknown[:5]:
            problems.append(Problem("unknown feature", index, key))
        values = []
        for name in names:
            if name not in row:
                if name not in schema.optional:
                    problems.append(Problem("missing feature", index, name))
                values.append(math.nan)
            else:
                values.append(_cell(row[name], index, name, schema, problems))
        return values, problems
    if isinstance(row, list):
        if len(row) != schema.width:
            msg = f"expected {schema.width} features in order {list(names)}, got {len(row)}"
            return [math.nan] * schema.width, [Problem(msg, index, "instances")]
        return [_cell(v, index, n, schema, problems) for v, n in zip(row, names)], problems
    kind = type(row).__name__
    return [math.nan] * schema.width, [
        Problem(f"an instance must be a list or an object, got {kind}", index, "instances")]


def _at_once(instances: Sequence[Any], schema: Schema, may_hold_bools: bool) -> np.ndarray | None:
    """The whole batch in one numpy call when every row is a well-formed list of numbers.

    numpy would quietly turn ``true`` into 1.0, so a caller that cannot rule booleans out
    (``may_hold_bools``) pays for a scan; the HTTP adapter rules them out on the raw bytes.
    """
    if not instances or not isinstance(instances[0], list):
        return None
    if len(instances) <= FEW_ROWS:  # plain Python checks beat numpy's call overhead
        return clean_rows(instances, schema)
    try:
        arr = np.asarray(instances)
    except (ValueError, TypeError):
        return None
    if arr.dtype.kind not in "fi" or arr.ndim != 2 or arr.shape[1] != schema.width:
        return None
    if refused_non_finite(arr, schema.allow_nan) is not None:
        return None
    if may_hold_bools and holds_bool(instances):  # type: ignore[arg-type]
        return None
    return arr


def _from_matrix(matrix: np.ndarray, schema: Schema) -> np.ndarray | None:
    """A numeric matrix in the model's float dtype when it fits the schema and every value
    survives the cast finite; else None (the walk then says which row and field)."""
    if matrix.ndim != 2 or matrix.shape[1] != schema.width or schema.dtype.kind != "f":
        return None
    if not within_float(matrix, schema.dtype):
        return None
    return matrix.astype(schema.dtype, copy=False)


def clean_rows(instances: Sequence[Any], schema: Schema) -> np.ndarray | None:
    """A few clean rows straight into the model's dtype; anything unusual -> None (the
    caller then walks the rows, which says what is wrong where)."""
    limit = schema.limit
    if not limit:  # not a float dtype
        return None
    width, finite_only = schema.width, not schema.allow_nan
    for row in instances:
        if type(row) is not list or len(row) != width:
            return None
        for v in row:
            if type(v) is not float and type(v) is not int:  # bool is not int here
                return None
            if not -limit <= v <= limit and (
                    type(v) is int or finite_only or math.isfinite(v)):
                return None  # out of range (or non-finite where not allowed): the slow path says
    return np.array(instances, dtype=schema.dtype)


def decode_instances(instances: Sequence[Any], schema: Schema,
                     may_hold_bools: bool = True) -> Decoded:
    """Decode every instance; never raises for bad content, reports it per index instead.

    ``instances`` may be a 2-D array of numbers already (codecs.matrix); one
    that does not fit the schema is walked like the lists it came from.
    """
    if isinstance(instances, np.ndarray):
        matrix = _from_matrix(instances, schema)
        if matrix is not None:
            return Decoded(matrix, {})
        instances = instances.tolist()
    whole = _at_once(instances, schema, may_hold_bools)
    if whole is not None:
        return Decoded(whole, {}) if whole.dtype == schema.dtype else _cast(whole, schema, {})
    rows: list[list[float]] = []
    problems: dict[int, list[Problem]] = {}
    for i, row in enumerate(instances):
        values, found = _decode_row(row, i, schema)
        rows.append(values)
        if found:
            problems[i] = found
    wide = np.asarray(rows, dtype=np.float64).reshape(len(rows), schema.width)
    return _cast(wide, schema, problems)


def _cast(wide: np.ndarray, schema: Schema, problems: dict[int, list[Problem]]) -> Decoded:
    """``wide`` in the model's dtype; values that do not survive the cast are problems."""
    if wide.dtype == schema.dtype:
        return Decoded(wide, problems)
    with np.errstate(over="ignore", invalid="ignore"):
        matrix = wide.astype(schema.dtype)
    if schema.dtype.kind == "f":
        lost = np.isfinite(wide) & ~np.isfinite(matrix)
        beyond = beyond_float(wide, schema.dtype)
        if beyond is not None:
            lost |= beyond
        why = "out of range for {}"
    else:  # integer inputs: fractions and out-of-range values are refused, not truncated
        lost = (wide != matrix) & ~np.isnan(wide)
        why = "not representable as {}"
    if lost.any():
        why = why.format(schema.dtype.name)
        for i, j in np.argwhere(lost).tolist():
            if i not in problems:
                problems[i] = [Problem(why, i, schema.feature_names[j])]
    return Decoded(matrix, problems)
