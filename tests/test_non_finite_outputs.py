"""A model output that is NaN or infinite is never answered as a prediction: the item
fails with ``non_finite_output`` naming its index (a strict route: the request's 422; /v2:
400; /batch-predict and columns: that item's error), and /metrics counts it.

The iris demo model overflows to NaN on a finite input: 1e38 fits float32, its softmax
does not."""

from __future__ import annotations

import re

import pytest

from tests.inprocess import InProcess

GOOD = [5.1, 3.5, 1.4, 0.2]
OVERFLOW = [0, 0, 0, 1e38]


def _counted(fn: InProcess) -> float:
    found = re.search(r"^predict_non_finite_total (\S+)$", fn.get("/metrics").text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("rows, index", [([OVERFLOW], 0), ([GOOD, OVERFLOW], 1)])
def test_a_strict_route_refuses_the_request_naming_the_index(
        demo_app: InProcess, rows: list, index: int) -> None:
    before = _counted(demo_app)
    resp = demo_app.post("/predict", json={"instances": rows})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "non_finite_output"
    assert error["message"].startswith(f"instances[{index}]")
    assert error["details"][0]["index"] == index
    assert _counted(demo_app) == before + 1


def test_batch_predict_fails_that_item_and_answers_the_rest(demo_app: InProcess) -> None:
    before = _counted(demo_app)
    body = demo_app.post("/batch-predict", json={"instances": [GOOD, OVERFLOW, GOOD]}).json()
    good, bad, again = body["predictions"]
    assert good == again and good["label"] == "setosa"
    assert bad["error"]["code"] == "non_finite_output" and bad["error"]["index"] == 1
    assert body["errors"] == 1
    columns = demo_app.post("/batch-predict?format=columns",
                            json={"instances": [OVERFLOW, GOOD]}).json()
    assert columns["outputs"]["label"] == [None, "setosa"]
    assert columns["outputs"]["probabilities"][0] is None
    assert [f["index"] for f in columns["failures"]] == [0]
    assert columns["failures"][0]["code"] == "non_finite_output"
    assert _counted(demo_app) == before + 2


def test_v2_answers_400_and_no_data(demo_app: InProcess) -> None:
    resp = demo_app.post("/v2/models/iris/infer", json={"inputs": [
        {"name": "input", "shape": [2, 4], "datatype": "FP32", "data": GOOD + OVERFLOW}]})
    assert resp.status_code == 400, resp.text
    assert "is not finite (NaN or infinity)" in resp.json()["error"]
    assert "instances[1]" in resp.json()["error"]


def test_null_instances_are_refused_not_scored(demo_app: InProcess) -> None:
    """The issue's third case: ``{"inputs": [null, null]}`` scored a row and answered nulls;
    each is an item error now (the request codec refuses it before the model runs)."""
    body = demo_app.post("/batch-predict", json={"inputs": [None, None]}).json()
    assert body["errors"] == 2 and body["unique_rows"] == 0
    assert [p["error"]["index"] for p in body["predictions"]] == [0, 1]


def test_finite_answers_are_unchanged(demo_app: InProcess) -> None:
    resp = demo_app.post("/predict", json={"instances": [GOOD]})
    assert resp.status_code == 200 and resp.json()["predictions"][0]["label"] == "setosa"
