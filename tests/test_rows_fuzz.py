"""Any JSON value as instances: decode_instances reports problems per index, never raises."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.codecs.tabular import Schema, decode_instances

NAMES = ("a", "b", "c")
scalars = (st.none() | st.booleans() | st.text(max_size=3)
           | st.integers(min_value=-(10**400), max_value=10**400)
           | st.floats(allow_nan=True, allow_infinity=True))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.sampled_from(NAMES + ("zz",)), inner, max_size=4),
                           max_leaves=12)
rows = st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=3, max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.lists(json_values | rows, min_size=1, max_size=8), st.booleans(),
       st.sampled_from(["float32", "float64", "int64"]))
def test_decode_never_raises_and_flags_each_bad_row(instances, allow_nan, dtype) -> None:
    schema = Schema(NAMES, np.dtype(dtype), allow_nan)
    decoded = decode_instances(instances, schema)
    assert decoded.matrix.shape == (len(instances), 3)
    assert decoded.matrix.dtype == np.dtype(dtype)
    for i, row in enumerate(instances):
        if i in decoded.problems:
            assert all(p.index == i and p.message for p in decoded.problems[i])
            continue
        values = [row[n] for n in NAMES] if isinstance(row, dict) else row
        assert isinstance(values, list) and len(values) == 3
        for v, got in zip(values, decoded.matrix[i]):
            if allow_nan and (v is None or (isinstance(v, float) and math.isnan(v))):
                continue
            assert not isinstance(v, bool) and isinstance(v, int | float)
            assert got == schema.dtype.type(v)
