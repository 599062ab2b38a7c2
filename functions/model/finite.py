"""Which rows of a model call's outputs are not finite (NaN or ±inf): such an output is
never answered as a prediction (the service fails those items with ``non_finite_output``).

The common case costs one quick test per floating output of the call: a few values (one
row) summed as Python floats (NaN or infinite whenever a value is: a few float32 values
cannot overflow a double); more as the dot product of the values with themselves (BLAS:
no allocation, cheaper than any ufunc). Only when the test fails (a non-finite value, or finite
values whose squares overflow) are the values themselves looked at, and then the rows.
"""

from __future__ import annotations

import math

import numpy as np

CODE = "non_finite_output"
FEW_VALUES = 64
"""Up to this many values, a Python sum of the values beats any numpy call."""


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
        if math.isfinite(np.vdot(values, values) if values.size > FEW_VALUES
                         else sum(values.ravel().tolist())):
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
