"""Large tabular batches: the numeric-matrix read (simdjson) and the ``format=columns``
answer, through the real app in process against the demo model, checked against
onnxruntime and against the general path (the same rows in a body the matrix read does
not take)."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.codecs.matrix import numeric_matrix
from tests.inprocess import InProcess
from tests.test_http_contract import LABELS, SETOSA, reference

JSON = {"content-type": "application/json"}


def rows(n: int, seed: int = 0) -> list[list[float]]:
    return np.random.default_rng(seed).uniform(0.1, 7.0, size=(n, 4)).round(3).tolist()


def post(fn: InProcess, path: str, body: bytes) -> tuple[int, dict]:
    resp = fn.post(path, data=body, headers=JSON)
    return resp.status_code, resp.json()


def test_matrix_body_answers_as_the_general_path(demo_app: InProcess) -> None:
    batch = rows(600)
    batch[17] = batch[3]  # a duplicate: scored once, answered twice
    fast = json.dumps({"instances": batch}).encode()  # one numeric matrix: simdjson
    general = json.dumps({"instances": batch, "parameters": {}}).encode()  # orjson
    assert numeric_matrix(fast, 4) is not None and numeric_matrix(general, 4) is None
    demo_app.post("/predict", json={"instances": [SETOSA]})  # the model is known
    status, a = post(demo_app, "/batch-predict", fast)
    status2, b = post(demo_app, "/batch-predict", general)
    assert status == status2 == 200
    assert a == b
    assert a["unique_rows"] == 599 and a["errors"] == 0
    labels, probs = reference(batch)
    assert [p["label"] for p in a["predictions"]] == labels
    got = np.array([[p["probabilities"][c] for c in LABELS] for p in a["predictions"]])
    np.testing.assert_allclose(got, probs, rtol=1e-6)


def test_columns_format_carries_the_same_predictions(demo_app: InProcess) -> None:
    batch = rows(300, seed=1)
    body = json.dumps({"instances": batch}).encode()
    status, by_rows = post(demo_app, "/batch-predict", body)
    status2, cols = post(demo_app, "/batch-predict?format=columns", body)
    assert status == status2 == 200
    assert cols["classes"] == LABELS
    assert cols["outputs"]["label"] == [p["label"] for p in by_rows["predictions"]]
    probs = np.array(cols["outputs"]["probabilities"], dtype=np.float32)
    rows_probs = np.array([[p["probabilities"][c] for c in LABELS]
                           for p in by_rows["predictions"]], dtype=np.float32)
    np.testing.assert_array_equal(probs, rows_probs)  # the same float32, both formats
    np.testing.assert_array_equal(probs, reference(batch)[1])
    assert cols["errors"] == 0 and "failures" not in cols
    assert cols["model_version"] == "1" and cols["unique_rows"] == 300
    status, one = post(demo_app, "/predict?format=columns",
                       json.dumps({"instances": [SETOSA]}).encode())
    assert status == 200 and one["outputs"]["label"] == ["setosa"]


def test_columns_format_reports_failures_by_index_and_keeps_the_rest(
        demo_app: InProcess) -> None:
    batch: list = rows(50, seed=2)
    batch[4] = [1, "x", 2, 3]
    batch[9] = [1e39, 1, 2, 3]  # beyond float32
    batch[11] = batch[0]
    status, body = post(demo_app, "/batch-predict?format=columns",
                        json.dumps({"instances": batch}).encode())
    assert status == 200, body
    labels = body["outputs"]["label"]
    assert labels[4] is None and labels[9] is None and labels[11] == labels[0]
    assert body["outputs"]["probabilities"][4] is None
    assert body["errors"] == 2
    assert [f["index"] for f in body["failures"]] == [4, 9]
    assert body["failures"][0]["details"][0]["field"] == "sepal_width"
    assert "float32" in body["failures"][1]["message"]
    good = [r for i, r in enumerate(batch) if i not in (4, 9)]
    expected = reference(good)[0]
    assert [lab for i, lab in enumerate(labels) if i not in (4, 9)] == expected


def test_a_bad_value_in_a_matrix_body_is_named(demo_app: InProcess) -> None:
    batch = rows(200, seed=3)
    batch[123][2] = 1e39  # a number simdjson reads, float32 cannot hold
    body = json.dumps({"instances": batch}).encode()
    assert numeric_matrix(body, 4) is not None
    status, strict = post(demo_app, "/predict", body)
    assert status == 422 and strict["error"]["details"][0] == {
        "message": "out of range for float32", "index": 123, "field": "petal_length"}
    status, lenient = post(demo_app, "/batch-predict", body)
    assert status == 200 and lenient["errors"] == 1
    assert lenient["predictions"][123]["error"]["index"] == 123
    assert lenient["predictions"][122]["label"] in LABELS


def test_unknown_format_is_a_400_naming_the_parameter(demo_app: InProcess) -> None:
    status, body = post(demo_app, "/batch-predict?format=csv",
                        json.dumps({"instances": [SETOSA]}).encode())
    assert status == 400
    assert body["error"]["details"][0]["field"] == "format"


@pytest.mark.parametrize("body", [
    b'{"instances":[[1,2],[3]]}',  # ragged
    b'{"instances":[[1,2,3],[4]]}',  # ragged, the right total
    b'{"instances":[1,[[2]]]}',  # a number among the rows, a nested list
    b'{"instances":[[1,[2]],[3,4]]}',
    b'{"instances":[[1,true],[3,4]]}',
    b'{"instances":[[1,null],[3,4]]}',
    b'{"instances":[[1,"2"],[3,4]]}',
    b'{"instances":[[1,2],[3,4]],"parameters":{}}',
    b'{"instances":[[1,2],[3,4]],"instances":[[5,6],[7,8]]}',  # duplicate key: last wins
    b'{"instances":[[1e400,2],[3,4]]}',
    b'{"instances":[[NaN,2],[3,4]]}',
    b'{"instances":[[18446744073709551617,2],[3,4]]}',
    b'{"instances":[]}',
    b'{"instances":[[],[]]}',
    b'[[1,2],[3,4]]',
    b'{"instances":[[1,2],[3,4]]',
    b'{"instances":' + b"[" * 3000 + b"]" * 3000 + b"}",
])
def test_only_an_exact_matrix_takes_the_matrix_read(body: bytes) -> None:
    assert numeric_matrix(body, 2) is None


def test_whitespace_and_integers_are_fine() -> None:
    got = numeric_matrix(b' {\n "instances" : [ [ 1 , -2.5e1 ] ,\n\t[3,4] ] } ', 2)
    assert got is not None and got.tolist() == [[1.0, -25.0], [3.0, 4.0]]


numbers = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False,
                                                             width=32))
leaf = st.one_of(numbers, st.none(), st.booleans(), st.text(max_size=2))
shapes = st.recursive(leaf, lambda inner: st.lists(inner, max_size=4), max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(st.lists(shapes, min_size=1, max_size=5), st.integers(1, 3))
def test_matrix_read_agrees_with_orjson(instances: list, width: int) -> None:
    """Whatever the body, the matrix read either declines or returns exactly what the
    general path reads (an n x width matrix of numbers, value for value)."""
    body = orjson.dumps({"instances": instances})
    got = numeric_matrix(body, width)
    if got is None:
        return
    assert all(isinstance(r, list) and len(r) == width and all(
        type(v) in (int, float) for v in r) for r in instances)
    np.testing.assert_array_equal(got, np.asarray(instances, dtype=np.float64))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(numbers, max_size=4), min_size=1, max_size=6), st.integers(1, 3))
def test_matrix_read_takes_every_exact_matrix(instances: list, width: int) -> None:
    body = orjson.dumps({"instances": instances})
    got = numeric_matrix(body, width)
    if all(len(r) == width for r in instances):
        assert got is not None
        np.testing.assert_array_equal(got, np.asarray(instances, dtype=np.float64))
    else:
        assert got is None
