"""Which rows of a model call's outputs are not finite (NaN or ±inf): such an output is
never answered as a prediction (the service fails those items with ``non_finite_output``).

The common case costs one vectorised ``np.isfinite`` per floating output of the call; its
mask is searched for a False byte (memchr) rather than reduced with ``.all()``, whose
ufunc reduction costs more than the check itself on a single row. Rows are looked at
only when a value is not finite.
"""

from __future__ import annotations

import numpy as np

CODE = "non_finite_output"


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
        finite = np.isfinite(values)
        if b"\x00" not in finite.tobytes():  # every value finite (a bool is one byte)
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
