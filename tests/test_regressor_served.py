"""A regressor exported by model_export is served with `value` per row, matching sklearn."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests.model_export_fixtures import cli, ok


def export(model, path: Path) -> None:
    joblib.dump(model, path.with_suffix(".joblib"))
    ok(cli("sklearn", path.with_suffix(".joblib")))


def test_single_and_multi_output_regressors(app, tmp_path: Path) -> None:
    X, y = load_diabetes(return_X_y=True)
    X = X.astype(np.float32)
    single = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    multi = Ridge().fit(X, np.c_[y, -2 * y])
    export(single, tmp_path / "single.onnx")
    export(multi, tmp_path / "multi.onnx")
    rows = X[:5]

    fn = app({"MODEL_URI": str(tmp_path / "single.onnx")})
    preds = fn.post("/predict", json={"instances": rows.tolist()}).json()["predictions"]
    np.testing.assert_allclose([p["value"] for p in preds], single.predict(rows), rtol=1e-4)

    fn = app({"MODEL_URI": str(tmp_path / "multi.onnx")})
    preds = fn.post("/predict", json={"instances": rows.tolist()}).json()["predictions"]
    np.testing.assert_allclose([p["value"] for p in preds], multi.predict(rows), rtol=1e-4)
