"""Gradient-boosted trees through model_export: LightGBM and XGBoost on scikit-learn's
breast-cancer data, by their scikit-learn API (alone, and ending a Pipeline) and their
native boosters; published to moto's S3 and served by the function, same answers."""

from __future__ import annotations

from pathlib import Path

import joblib
import lightgbm
import numpy as np
import pytest
import xgboost

from functions.config.card import ModelCard
from tests.model_export_fixtures import cli, create_s3_bucket, fails, ok

LABELS = ["malignant", "benign"]


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Breast-cancer rows (float32) and a CSV of them with the target."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    X, y = data.data.astype(np.float32), data.target
    tmp = tmp_path_factory.mktemp("gbdt")
    names = [f"f{i}" for i in range(X.shape[1])]
    rows = tmp / "rows.csv"
    lines = [",".join([*names, "diagnosis"])]
    lines += [",".join([*map(repr, row.tolist()), LABELS[t]]) for row, t in zip(X, y, strict=True)]
    rows.write_text("\n".join(lines) + "\n")
    return {"X": X, "y": y, "dir": tmp, "rows": rows}


def served_probabilities(served, X: np.ndarray) -> tuple[list[str], np.ndarray]:
    resp = served.post("/predict", json={"instances": X.tolist()})
    assert resp.status_code == 200, resp.text
    preds = resp.json()["predictions"]
    return ([p["label"] for p in preds],
            np.array([[p["probabilities"][name] for name in LABELS] for p in preds]))


def test_lightgbm_pipeline_and_xgboost_booster_published_to_s3_and_served(
        cancer: dict, s3_env: dict[str, str], app) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, tmp = cancer["X"], cancer["y"], cancer["dir"]
    pipe = make_pipeline(StandardScaler(),
                         lightgbm.LGBMClassifier(n_estimators=40, verbose=-1)).fit(X, y)
    joblib.dump(pipe, tmp / "lgbm.joblib")
    out = ok(cli("sklearn", tmp / "lgbm.joblib", "--labels", ",".join(LABELS),
                 "--sample-rows", cancer["rows"], "--target", "diagnosis"))
    assert "parity PASSED: 569 rows" in out
    card = ModelCard.from_json((tmp / "lgbm.card.json").read_bytes())
    assert [(o.name, o.dtype, o.shape) for o in card.outputs] == [
        ("label", "int64", [None]), ("probabilities", "float32", [None, 2])]
    assert card.framework["trees"].startswith("lightgbm ") and "onnxmltools" in \
        card.converter["trees"]
    assert card.verify["tolerance"]["max_outlier_share"] == 0.001

    booster = xgboost.XGBClassifier(n_estimators=40, max_depth=4).fit(X, y).get_booster()
    booster.save_model(tmp / "xgb.json")
    out = ok(cli("gbdt", tmp / "xgb.json", "--labels", ",".join(LABELS), "--rows", "2000"))
    assert "parity PASSED: 2000 rows (2000 rows drawn from N(0, 1))" in out
    card = ModelCard.from_json((tmp / "xgb.card.json").read_bytes())
    assert (card.framework["name"], card.converter["name"], card.labels) == (
        "xgboost", "onnxmltools", LABELS)
    ok(cli("verify", tmp / "xgb.onnx", "--source", tmp / "xgb.json", "--sample-rows",
           cancer["rows"], "--target", "diagnosis"))

    create_s3_bucket(s3_env["AWS_ENDPOINT_URL"], "trees")
    for name in ("lgbm", "xgb"):
        ok(cli("publish", tmp / f"{name}.onnx", "--to", "s3://trees/m", "--quiet", env=s3_env))
    labels, probs = served_probabilities(
        app({**s3_env, "MODEL_URI": "s3://trees/m/lgbm/1/model.onnx"}), X)
    assert labels == [LABELS[i] for i in pipe.predict(X)]
    np.testing.assert_allclose(probs, pipe.predict_proba(X), atol=1e-5)
    labels, probs = served_probabilities(
        app({**s3_env, "MODEL_URI": "s3://trees/m/xgb/1/model.onnx"}), X)
    want = booster.predict(xgboost.DMatrix(X))
    assert labels == [LABELS[int(p > 0.5)] for p in want]
    np.testing.assert_allclose(probs[:, 1], want, atol=1e-5)


def test_native_lightgbm_regressor_and_sklearn_xgboost_regressor(cancer: dict) -> None:
    X, tmp = cancer["X"], cancer["dir"]
    target = X[:, 0] * 2 + X[:, 1]
    reg = lightgbm.LGBMRegressor(n_estimators=30, verbose=-1).fit(X, target)
    reg.booster_.save_model(str(tmp / "lgbm_reg.txt"))
    out = ok(cli("gbdt", tmp / "lgbm_reg.txt", "--sample-rows", cancer["rows"],
                 "--target", "diagnosis"))
    assert "parity PASSED: 569 rows" in out
    card = ModelCard.from_json((tmp / "lgbm_reg.card.json").read_bytes())
    assert (card.task, card.value_output, card.framework["name"]) == (
        "regression", "value", "lightgbm")
    import onnxruntime as ort

    value, = ort.InferenceSession(tmp / "lgbm_reg.onnx").run(None, {"input": X})
    np.testing.assert_allclose(value.ravel(), reg.predict(X), rtol=1e-5, atol=1e-4)

    joblib.dump(xgboost.XGBRegressor(n_estimators=30).fit(X, target), tmp / "xgb_reg.joblib")
    out = ok(cli("gbdt", tmp / "xgb_reg.joblib", "--sample-rows", cancer["rows"],
                 "--target", "diagnosis"))  # a scikit-learn API pickle goes the sklearn way
    assert "parity PASSED" in out
    card = ModelCard.from_json((tmp / "xgb_reg.card.json").read_bytes())
    assert card.framework["name"] == "scikit-learn" and card.framework["trees"].startswith(
        "xgboost")


def test_booster_errors(tmp_path: Path, cancer: dict) -> None:
    (tmp_path / "junk.txt").write_text("not a model\n")
    fails(cli("gbdt", tmp_path / "junk.txt"), 3, "junk.txt is not a LightGBM or XGBoost model")
    joblib.dump({"trees": 3}, tmp_path / "dict.joblib")
    fails(cli("gbdt", tmp_path / "dict.joblib"), 3, "holds a dict, not a LightGBM or XGBoost")
    booster = xgboost.XGBClassifier(n_estimators=3).fit(cancer["X"], cancer["y"]).get_booster()
    booster.save_model(tmp_path / "b.json")
    fails(cli("gbdt", tmp_path / "b.json", "--labels", "a,b,c"), 2, "3 labels given for 2")
