"""Every kind of model people deploy, served by the real app in process (tests/inprocess.py)
through /predict, /batch-predict and /v2, with the answers of the framework that trained
it and the bad inputs each kind invites."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests import model_kinds as mk
from tests.built_models import BuiltModels
from tests.inprocess import InProcess, start_in_process


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory,
          built_model: BuiltModels) -> Iterator[Callable[[str], tuple]]:
    """``kinds(name)`` -> (the function serving it in process, what the builder returned)."""
    root = tmp_path_factory.mktemp("kinds")
    started: dict[str, tuple[InProcess, tuple]] = {}

    def get(name: str) -> tuple[InProcess, tuple]:
        if name not in started:
            built = built_model(name)
            fn = start_in_process({"MODEL_URI": str(built[0])}, root / name)
            started[name] = (fn, built)
        return started[name]

    yield get
    for fn, _ in started.values():
        fn.stop()


def post(fn: InProcess, path: str, body: dict) -> tuple[int, dict]:
    resp = fn.post(path, json=body)
    return resp.status_code, resp.json()


def test_two_inputs_by_name_rows_and_columns(kinds) -> None:
    fn, (_, predict) = kinds("two_input")
    feats = np.array([[0.5, 1.0, -1.0, 2.0], [1.5, 0.0, 0.25, -3.0]], dtype=np.float32)
    ids = np.array([3, 7])
    want = predict(feats, ids)[:, 0]
    status, body = post(fn, "/predict", {"instances": [
        {"features": feats[i].tolist(), "user_id": int(ids[i])} for i in range(2)]})
    assert status == 200, body
    assert np.allclose([p["value"] for p in body["predictions"]], want, atol=1e-5)
    status, body = post(fn, "/predict", {"inputs": {"features": feats.tolist(),
                                                    "user_id": ids.tolist()}})
    assert status == 200 and np.allclose([p["value"] for p in body["predictions"]], want,
                                         atol=1e-5)
    model = fn.get("/model").json()["instances"]
    assert model["format"] == "tensors"
    assert [(i["name"], i["dtype"], i["instance_shape"]) for i in model["inputs"]] == [
        ("features", "float32", [4]), ("user_id", "int64", [])]


def test_two_inputs_bad_items_fail_alone(kinds) -> None:
    fn, (_, predict) = kinds("two_input")
    good = {"features": [0.5, 1.0, -1.0, 2.0], "user_id": 3}
    instances = [good,
                 {**good, "user_id": 42},                      # outside the embedding table
                 {"feature": good["features"], "user_id": 3},  # wrong input name
                 {**good, "features": [1.0, 2.0, 3.0]},        # wrong per-instance shape
                 {**good, "user_id": 1.5},                     # wrong dtype
                 {**good, "features": ["a", "b", "c", "d"]},   # strings to a numeric input
                 {**good, "user_id": 9}]
    status, body = post(fn, "/batch-predict", {"instances": instances})
    assert status == 200, body
    preds = body["predictions"]
    assert body["errors"] == 5
    fields = {i: p["error"]["details"][0].get("field") for i, p in enumerate(preds)
              if "error" in p}
    assert fields == {1: "user_id", 2: "feature", 3: "features", 4: "user_id", 5: "features"}
    assert all(preds[i]["error"]["status"] == 422 and preds[i]["error"]["index"] == i
               for i in fields)
    assert "out of" in preds[1]["error"]["message"] or "bounds" in preds[1]["error"]["message"]
    want = predict(np.array([good["features"]] * 2, dtype=np.float32), np.array([3, 9]))[:, 0]
    assert np.allclose([preds[0]["value"], preds[6]["value"]], want, atol=1e-5)

    status, body = post(fn, "/predict", {"instances": [good, {**good, "user_id": 42}]})
    assert status == 422 and "instances[1].user_id" in body["error"]["message"], body
    resp = fn.post("/v2/models/two_input/infer", json={"inputs": [
        {"name": "features", "datatype": "FP32", "shape": [1, 4], "data": good["features"]},
        {"name": "user_id", "datatype": "INT64", "shape": [1], "data": [42]}]})
    assert resp.status_code == 400 and "refused" in resp.json()["error"]


def test_image_tensors(kinds) -> None:
    fn, (_, predict) = kinds("image")
    images = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    status, body = post(fn, "/predict", {"instances": images.tolist()})
    assert status == 200, body
    want = predict(images)
    got = np.array([[p["probabilities"][k] for k in ("cat", "dog", "bird")]
                    for p in body["predictions"]])
    assert np.allclose(got, want, atol=1e-5)
    assert [p["label"] for p in body["predictions"]] == [
        ["cat", "dog", "bird"][i] for i in want.argmax(axis=1)]
    status, body = post(fn, "/batch-predict", {"instances": [
        images[0].tolist(), images[0][:, :16, :16].tolist(), {"image": images[1].tolist()}]})
    assert status == 200 and body["errors"] == 1, body
    err = body["predictions"][1]["error"]
    assert err["details"][0]["field"] == "image" and "[3, 16, 16]" in err["message"]
    assert body["predictions"][2]["label"] == ["cat", "dog", "bird"][want[1].argmax()]


def test_string_input_pipeline(kinds) -> None:
    fn, (_, predict) = kinds("string")
    texts = ["great service", "awful and slow", "a great great place"]
    status, body = post(fn, "/predict", {"instances": texts})
    assert status == 200, body
    got = np.array([[p["probabilities"]["negative"], p["probabilities"]["positive"]]
                    for p in body["predictions"]])
    assert np.allclose(got, predict(texts), atol=1e-5)
    status, body = post(fn, "/batch-predict", {"instances": ["great", 7, ["awful"]]})
    assert status == 200 and body["errors"] == 1
    assert body["predictions"][1]["error"]["details"][0]["field"] == "text"
    assert body["predictions"][2]["label"] == "negative"


def test_gbdt_with_zipmap_output(kinds) -> None:
    from sklearn.datasets import load_breast_cancer

    fn, (_, predict, names) = kinds("gbdt")
    X = load_breast_cancer().data[:5].astype(np.float32)
    status, body = post(fn, "/predict", {"instances": X.tolist()})
    assert status == 200, body
    got = np.array([[p["probabilities"]["0"], p["probabilities"]["1"]]
                    for p in body["predictions"]])
    assert np.allclose(got, predict(X), atol=1e-5)
    status, body = post(fn, "/predict", {"instances": [dict(zip(names, X[0].tolist()))]})
    assert status == 200 and body["predictions"][0]["label"] in (0, 1)


def test_text_model_with_its_tokenizer(kinds) -> None:
    fn, (path, bert) = kinds("bert")
    texts = ["the service is great", "slow", "great food, great service"]
    status, body = post(fn, "/predict", {"instances": [texts[0], {"text": texts[1]}, texts[2]]})
    assert status == 200, body
    want = mk.reference_embeddings(bert, Path(path).parent / "tokenizer.json", texts, 16)
    got = np.array([p["embedding"] for p in body["predictions"]])
    assert got.shape == (3, 32) and np.allclose(got, want, atol=1e-4)
    long = " ".join(["great service"] * 20)
    status, body = post(fn, "/batch-predict", {"instances": [long, 5, texts[1], texts[1]]})
    assert status == 200, body
    preds = body["predictions"]
    assert preds[0]["truncated"] is True and "truncated" not in preds[2]
    assert preds[1]["error"]["status"] == 422 and body["unique_rows"] == 2
    huge = "great service " * 300_000  # 4 MB of text: cut before it is tokenized
    status, body = post(fn, "/predict", {"instances": [huge]})
    assert status == 200 and body["predictions"][0]["truncated"] is True
    model = fn.get("/model").json()["instances"]
    assert model["format"] == "text" and model["tokenizer"]["max_length"] == 16


def _batches(name: str) -> list:
    """A batch with good items, a duplicate and a bad item, per kind of model."""
    rng = np.random.default_rng(1)
    good_pair = {"features": [0.5, 1.0, -1.0, 2.0], "user_id": 3}
    image = rng.random((3, 32, 32), dtype=np.float32).tolist()
    from sklearn.datasets import load_breast_cancer
    row = load_breast_cancer().data[0].tolist()
    return {"two_input": [good_pair, {**good_pair, "user_id": 42}, good_pair,
                          {**good_pair, "user_id": 9}],
            "image": [image, [[1.0]], image],
            "string": ["great service", 7, "awful and slow", "great service"],
            "gbdt": [row, row[:3], [v * 1.1 for v in row], row],
            "bert": [" ".join(["great service"] * 20), 5, "slow", "slow"]}[name]


@pytest.mark.parametrize("name", ["two_input", "image", "string", "gbdt", "bert"])
def test_columns_format_answers_as_the_row_format(kinds, name: str) -> None:
    """?format=columns carries, field by field, what the row objects say: the same values
    (float32 both ways), null and the same error where an item failed, notes as columns."""
    fn, _ = kinds(name)
    instances = _batches(name)
    status, rows = post(fn, "/batch-predict", {"instances": instances})
    status2, cols = post(fn, "/batch-predict?format=columns", {"instances": instances})
    assert status == status2 == 200, (rows, cols)
    assert cols["errors"] == rows["errors"] >= 1
    assert cols["unique_rows"] == rows["unique_rows"]
    failures = {f["index"]: f for f in cols["failures"]}
    outputs, classes = cols["outputs"], cols.get("classes")
    for i, item in enumerate(rows["predictions"]):
        if "error" in item:
            assert failures[i] == item["error"]
            assert all(column[i] is None for column in outputs.values())
            continue
        assert i not in failures
        for field, value in item.items():
            got = outputs[field][i]
            if field == "probabilities":
                got = dict(zip(classes, got))
                assert list(got) == list(value)
                got, value = list(got.values()), list(value.values())
            if isinstance(value, (list, float)):
                np.testing.assert_array_equal(np.asarray(got, dtype=np.float32),
                                              np.asarray(value, dtype=np.float32))
            else:
                assert got == value
        for field in set(outputs) - set(item):  # a note this item does not carry
            assert outputs[field][i] is None
