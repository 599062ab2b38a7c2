"""Which rows of a model call's outputs are not finite (NaN or ±inf): such an output is
never answered as a prediction (the service fails those items with ``non_finite_output``).

The common case costs one quick test per floating output of the call: a few values (one
row) written by orjson, which writes a non-finite float as null; more as the dot product
of the values with themselves (BLAS: no allocation, cheaper than any ufunc), NaN or
infinite whenever a value is. Only when the test fails (a non-finite value, or finite
values whose squares overflow) are the values themselves looked at, and then the rows.
"""

from __future__ import annotations

import math

import numpy as np
import orjson

CODE = "non_finite_output"
FEW_VALUES = 64
"""Up to this many values, orjson's pass beats any numpy call."""


def non_finite_rows(outputs: dict[str, np.ndarray], rows: int,
                    ) -> tuple[np.ndarray, str] | None:
    """(mask over the ``rows`` rows, True where an output is not finite; the first such
    output's name), or None when every floating output is finite. An output without a row
    axis of ``rows`` taints every row."""
    bad: np.ndarray | None = None
    first = ""
    for name, values in outputs.items():
        if values.dtype.kind != "f":
            continue
        if values.size > FEW_VALUES:
            if math.isfinite(np.vdot(values, values)):
                continue
        else:
            try:  # a non-finite float is written as null; the answer's encoder runs this
                # same orjson code next (a numpy call here would be code of its own to cache)
                if b"null" not in orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY):
                    continue
            except orjson.JSONEncodeError:  # not C-contiguous
                if math.isfinite(sum(values.ravel().tolist())):
                    continue
        finite = np.isfinite(values)
        if finite.all():  # large finite values whose squares overflowed
            continue
        if values.ndim and values.shape[0] == rows:
            row_bad = ~finite.reshape(rows, -1).all(axis=1)
        else:
            row_bad = np.ones(rows, dtype=bool)
        if bad is None:
            bad, first = row_bad, name
        else:
            bad |= row_bad
    return None if bad is None else (bad, first)


def message(output: str) -> str:
    """What a failed item's error says."""
    return (f"the model's output '{output}' is not finite (NaN or infinity) for this "
            "instance: no prediction can be answered for it")
