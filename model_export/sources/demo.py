"""The ``demo`` subcommand: rebuild the bundled iris model (models/iris.onnx + card).

StandardScaler + LogisticRegression trained on scikit-learn's iris data, exported with the
same ``sklearn`` path users take, verified on all 150 rows. The graph and its names are
what the server and its tests rely on: input ``input`` float32 [N, 4]; outputs ``label``
int64 [N] and ``probabilities`` float32 [N, 3]; labels setosa/versicolor/virginica. The
training is deterministic and the graph named, so the same versions rebuild the same bytes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from model_export import card_files
from model_export.checks.parity import Tolerance
from model_export.checks.source_check import check_and_record
from model_export.samples import row_files
from model_export.sources import sklearn_convert

MODELS = Path(__file__).resolve().parent.parent / "models"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
LABELS = ["setosa", "versicolor", "virginica"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="rebuild the bundled iris demo model from scratch",
                       description=__doc__)
    p.add_argument("--out", type=Path, default=MODELS / "iris.onnx",
                   help="ONNX file to write (default: models/iris.onnx)")
    p.add_argument("--save-source", type=Path, metavar="FILE.joblib",
                   help="also save the trained scikit-learn pipeline (e.g. to try `sklearn`)")
    p.set_defaults(func=run)


def train() -> tuple[object, np.ndarray, np.ndarray]:
    """The fitted pipeline and the float32 iris rows and targets it was trained on."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return pipe.fit(X, y), X, y


def run(args: argparse.Namespace) -> None:
    pipe, X, y = train()
    if args.save_source:
        import joblib

        args.save_source.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(pipe, args.save_source)
    card = sklearn_convert.make_card(
        pipe, "iris", "1", FEATURES, LABELS,
        "Iris species from flower measurements in cm (StandardScaler + LogisticRegression); "
        "the bundled demo model, rebuilt by `python -m model_export demo`.")
    card.feature_ranges = row_files.feature_ranges(X, FEATURES)
    proto = sklearn_convert.convert(pipe, len(FEATURES), 17, "iris")
    card = card_files.write_model(proto, args.out, card)
    sample = row_files.Rows({"input": X}, y, "the 150 iris training rows")
    card = check_and_record(args.out, card, sklearn_convert.SklearnSource(pipe), sample,
                            Tolerance())
    print(f"wrote {args.out} and {card_files.card_path(args.out)} (sha256 {card.sha256})")
