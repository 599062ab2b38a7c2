"""Default LightGBM and XGBoost models (no hand-tuned flags) export and pass parity on a
holdout of scikit-learn's bundled data sets: breast_cancer (binary), wine (3 classes),
digits (10 classes) and diabetes (regression). LightGBM's double thresholds are stored as
the float32 that splits float32 inputs exactly as LightGBM does (model_export.sources.
gbdt_convert); before, a default LGBMClassifier on breast_cancer failed its own parity
check. A model that cannot pass is refused with the flag that would accept it."""

from __future__ import annotations

import csv
from pathlib import Path

import joblib
import lightgbm
import numpy as np
import pytest
import xgboost
from sklearn import datasets
from sklearn.model_selection import train_test_split

from tests.model_export_fixtures import cli, fails, ok

CLASSIFIERS = {"lightgbm": lambda: lightgbm.LGBMClassifier(verbose=-1),
               "xgboost": xgboost.XGBClassifier}
REGRESSORS = {"lightgbm": lambda: lightgbm.LGBMRegressor(verbose=-1),
              "xgboost": xgboost.XGBRegressor}
DATA = {"breast_cancer": True, "wine": True, "digits": True, "diabetes": False}


def _split(name: str, tmp: Path) -> tuple[np.ndarray, np.ndarray, Path]:
    """(train X, train y, holdout CSV with a ``target`` column): float32 features."""
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    X = X.astype(np.float32)
    X, Xt, y, yt = train_test_split(X, y, test_size=0.25, random_state=0)
    path = tmp / f"{name}_holdout.csv"
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow([f"f{i}" for i in range(X.shape[1])] + ["target"])
        out.writerows(row + [t] for row, t in zip(Xt.tolist(), yt.tolist(), strict=True))
    return X, y, path


@pytest.mark.parametrize("framework", ["lightgbm", "xgboost"])
@pytest.mark.parametrize("data", list(DATA))
def test_a_default_model_exports_and_passes_parity(tmp_path: Path, framework: str,
                                                   data: str) -> None:
    X, y, holdout = _split(data, tmp_path)
    model = (CLASSIFIERS if DATA[data] else REGRESSORS)[framework]().fit(X, y)
    joblib.dump(model, tmp_path / "model.joblib")
    out = ok(cli("sklearn", tmp_path / "model.joblib", "--sample-rows", holdout,
                 "--target", "target"))
    assert "parity PASSED" in out
    if framework == "lightgbm":  # the native booster, the other way in
        model.booster_.save_model(str(tmp_path / "booster.txt"))
        out = ok(cli("gbdt", tmp_path / "booster.txt", "--sample-rows", holdout,
                     "--target", "target"))
        assert "parity PASSED" in out


def test_a_model_that_cannot_pass_names_the_flag_to_try(tmp_path: Path) -> None:
    X, y, holdout = _split("diabetes", tmp_path)
    joblib.dump(lightgbm.LGBMRegressor(verbose=-1).fit(X, y), tmp_path / "model.joblib")
    err = fails(cli("sklearn", tmp_path / "model.joblib", "--sample-rows", holdout,
                    "--target", "target", "--atol", "0", "--rtol", "0"), 5,
                "does not match its source model")
    assert "try --outlier-share" in err and "or --atol" in err
