"""The prediction routes and the error contract against the demo model: in process through
the real app (tests/inprocess.py), the metrics text over a socket."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from tests.conftest import DEMO_MODEL
from tests.inprocess import InProcess
from tests.servers import Served

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]
NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
LABELS = ["setosa", "versicolor", "virginica"]


def reference(rows: list[list[float]]) -> tuple[list[str], np.ndarray]:
    """The model called in-process: what the function must answer."""
    session = ort.InferenceSession(str(DEMO_MODEL), providers=["CPUExecutionProvider"])
    label, probs = session.run(None, {"input": np.asarray(rows, dtype=np.float32)})
    return [LABELS[i] for i in label], probs


def post_json(fn: InProcess | Served, path: str, body: object) -> tuple[int, dict]:
    resp = fn.post(path, data=json.dumps(body), headers={"content-type": "application/json"})
    return resp.status_code, resp.json()


def test_predict_lists_and_objects_match_onnxruntime(demo_app: InProcess) -> None:
    rng = np.random.default_rng(0)
    rows = (rng.uniform(0.1, 7.0, size=(25, 4))).round(2).tolist()
    instances: list[object] = [dict(zip(NAMES, r)) if i % 2 else r for i, r in enumerate(rows)]
    status, body = post_json(demo_app, "/predict", {"instances": instances})
    assert status == 200, body
    labels, probs = reference(rows)
    assert [p["label"] for p in body["predictions"]] == labels
    got = np.array([[p["probabilities"][lab] for lab in LABELS] for p in body["predictions"]])
    np.testing.assert_allclose(got, probs, atol=1e-5)
    assert body["model_version"] == "1"


def test_batch_keeps_valid_rows_reports_bad_ones_by_index(demo_app: InProcess) -> None:
    instances = [SETOSA, [1, "x", 2, 3], VIRGINICA, [1, 2], SETOSA,
                 {"sepal_length": 1, "sepal_width": 2, "petal_length": 3}, "nope", VIRGINICA]
    status, body = post_json(demo_app, "/batch-predict", {"instances": instances})
    assert status == 200, body
    preds = body["predictions"]
    assert len(preds) == len(instances)
    assert [p.get("label") for p in preds] == [
        "setosa", None, "virginica", None, "setosa", None, None, "virginica"]
    assert preds[1]["error"]["details"] == [
        {"message": "expected a number, got str", "index": 1, "field": "sepal_width"}]
    assert preds[3]["error"]["index"] == 3 and "expected 4 features" in preds[3]["error"]["message"]
    assert preds[5]["error"]["details"][0]["field"] == "petal_width"
    assert "list or an object" in preds[6]["error"]["message"]
    assert body["errors"] == 4
    assert body["unique_rows"] == 2  # 4 valid rows, 2 distinct: one model row each
    assert preds[0] == preds[4]


def test_batch_of_duplicates_runs_the_model_on_unique_rows(demo_app: InProcess) -> None:
    instances = [SETOSA, VIRGINICA] * 500
    status, body = post_json(demo_app, "/batch-predict", {"instances": instances})
    assert status == 200
    assert body["unique_rows"] == 2 and body["errors"] == 0
    assert [p["label"] for p in body["predictions"][:4]] == ["setosa", "virginica"] * 2
    metrics = demo_app.get("/metrics").text
    assert "predict_model_rows_total" in metrics


@pytest.mark.parametrize("instances, field, index, words", [
    ([SETOSA, [1, 2, 3]], "instances", 1, "expected 4 features"),
    ([SETOSA, [1, None, 3, 4]], "sepal_width", 1, "expected a number"),
    ([[1, 2, 3, True]], "petal_width", 0, "got bool"),
    ([[1, "2", 3, 4]], "sepal_width", 0, "got str"),
    ([{"sepal_length": 1, "sepal_width": 2, "petal_length": 3, "petal_width": 4, "x": 1}],
     "x", 0, "unknown feature"),
    ([{"sepal_length": 1, "sepal_width": 2, "petal_length": 3}], "petal_width", 0, "missing"),
    ([SETOSA, SETOSA, 7], "instances", 2, "list or an object"),
    ([SETOSA, [1, 2, 3e39, 4]], "petal_length", 1, "out of range for float32"),
    ([SETOSA] * 6 + [[1, 2, 3e39, 4]], "petal_length", 6, "out of range for float32"),
    ([SETOSA] * 6 + [[1, 2, 3, 10**400]], "petal_width", 6, "out of range"),
    ([[1, 2, 3, -(10**400)]], "petal_width", 0, "out of range"),
])
def test_strict_predict_rejects_whole_request_naming_field_and_index(
        demo_app: InProcess, instances: list, field: str, index: int, words: str) -> None:
    status, body = post_json(demo_app, "/predict", {"instances": instances})
    assert status == 422, body
    first = body["error"]["details"][0]
    assert (first["field"], first["index"]) == (field, index)
    assert words in first["message"]
    assert f"instances[{index}]" in body["error"]["message"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_values_are_422_with_index(demo_app: InProcess, literal: str) -> None:
    raw = '{"instances": [[5.1, 3.5, 1.4, 0.2], [5.1, LIT, 1.4, 0.2]]}'.replace("LIT", literal)
    resp = demo_app.post("/predict", data=raw, headers={"content-type": "application/json"})
    assert resp.status_code == 422, resp.text
    first = resp.json()["error"]["details"][0]
    assert (first["index"], first["field"]) == (1, "sepal_width")
    assert "not allowed" in first["message"] or "expected a number" in first["message"]


@pytest.mark.parametrize("body, status, code", [
    (b"{not json", 400, "malformed_json"),
    (b"", 400, "malformed_json"),
    (b'{"rows": []}', 422, "validation_failed"),
    (b'{"instances": {}}', 422, "validation_failed"),
    (b'{"instances": []}', 422, "validation_failed"),
    (b"[1, 2]", 422, "validation_failed"),
])
def test_body_shape_errors(demo_app: InProcess, body: bytes, status: int, code: str) -> None:
    resp = demo_app.post("/predict", data=body, headers={"content-type": "application/json"})
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code
    assert resp.json()["error"]["message"]


def test_wrong_content_type_is_415(demo_app: InProcess) -> None:
    resp = demo_app.post("/predict", data=b'{"instances": [[1,2,3,4]]}',
                              headers={"content-type": "text/plain"})
    assert resp.status_code == 415
    assert "application/json" in resp.json()["error"]["message"]


def test_unknown_route_404_and_wrong_method_405(demo_app: InProcess) -> None:
    assert demo_app.get("/nope").json()["error"]["code"] == "not_found"
    resp = demo_app.get("/predict")
    assert resp.status_code == 405 and "POST" in resp.json()["error"]["message"]


def test_health_ready_and_model_metadata(demo_app: InProcess) -> None:
    assert demo_app.get("/healthz").status_code == 200
    assert demo_app.get("/readyz").json() == {"ready": True, "reason": "ready"}
    info = demo_app.get("/model").json()
    assert info["name"] == "iris" and info["version"] == "1" and len(info["sha256"]) == 64
    assert info["inputs"] == [{"name": "input", "dtype": "float32", "shape": [None, 4]}]
    assert info["feature_names"] == NAMES and info["labels"] == LABELS
    assert info["providers"] == ["CPUExecutionProvider"]


def test_limits_body_size_413_and_instance_count_422(app) -> None:
    fn = app({"MAX_BODY_BYTES": "2000", "MAX_INSTANCES": "3", "MAX_BATCH_INSTANCES": "5"})
    big = json.dumps({"instances": [SETOSA] * 200})
    resp = fn.post("/predict", data=big, headers={"content-type": "application/json"})
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"
    status, body = post_json(fn, "/predict", {"instances": [SETOSA] * 4})
    assert status == 422 and "limit of 3" in body["error"]["message"]
    status, body = post_json(fn, "/batch-predict", {"instances": [SETOSA] * 5})
    assert status == 200 and len(body["predictions"]) == 5
    # chunked upload without Content-Length is cut off at the cap as well
    resp = fn.post("/predict", data=iter([big[:1500].encode(), big[1500:].encode()]),
                   headers={"content-type": "application/json"})
    assert resp.status_code == 413


def test_metrics_are_prometheus_text_with_bounded_route_labels(demo_function: Served) -> None:
    """Over a socket: /metrics is process-wide, so only a process of its own shows exact
    gauges; this is also one of the smoke tests that keep the in-process path honest."""
    for path in ("/no/such/thing-1", "/no/such/thing-2"):
        demo_function.get(path)
    demo_function.post("/predict", json={"instances": [SETOSA]})
    text = demo_function.get("/metrics").text
    assert "thing-1" not in text and 'path="unmatched",status="404"' in text
    assert "# TYPE http_requests_total counter" in text
    assert "# TYPE http_request_seconds summary" in text
    assert 'http_request_seconds_count{path="/predict"}' in text
    assert "# TYPE model_ready gauge" in text and "\nmodel_ready 1\n" in text
    for line in text.splitlines():  # every sample line is NAME{labels} VALUE
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


def test_vertex_ai_custom_container_routes(app) -> None:
    route = "/v1/endpoints/123/deployedModels/456:predict"
    fn = app({"AIP_PREDICT_ROUTE": route, "AIP_HEALTH_ROUTE": "/health"})
    body = {"instances": [SETOSA], "parameters": {"ignored": True}}
    resp = fn.post(route, json=body)
    assert resp.status_code == 200 and resp.json()["predictions"][0]["label"] == "setosa"
    assert fn.get("/health").json() == {"ready": True, "reason": "ready"}
