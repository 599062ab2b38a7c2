"""The ``sklearn`` subcommand: a fitted estimator or Pipeline (joblib/pickle) -> ONNX + card.

Conversion is ``sklearn_convert``'s (skl2onnx, with onnxmltools' converters for LightGBM
and XGBoost estimators); the end is ``write_and_verify``'s.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model_export import options
from model_export.exit_codes import InputError
from model_export.sources import sklearn_convert
from model_export.sources.write_and_verify import write_and_verify


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sklearn", help="scikit-learn estimator/Pipeline (joblib/pickle) to ONNX",
                       description=run.__doc__)
    p.add_argument("model", type=Path, help="joblib or pickle file of a fitted estimator")
    options.add_identity(p, "model file")
    options.add_rows(p)
    options.add_tolerance(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Convert a fitted scikit-learn estimator or Pipeline with skl2onnx: float32 input
    [N, F] with a dynamic batch axis, probabilities as a plain tensor (no ZipMap), feature
    names and class labels carried into the card; then verify parity."""
    est = sklearn_convert.load(args.model)
    text = bool(sklearn_convert.text_vectorizers(est))
    n_features = None if text else getattr(est, "n_features_in_", None)
    if n_features is None and not text:
        raise InputError(f"{args.model}: cannot tell how many features "
                         f"{type(est).__name__} takes (no n_features_in_)")
    names = (args.feature_names or [str(f) for f in getattr(est, "feature_names_in_", [])]
             or ([sklearn_convert.TEXT_FEATURE] if text
                 else [f"x{i}" for i in range(n_features)]))  # type: ignore[arg-type]
    if len(names) != (n_features or 1):
        raise InputError(f"{len(names)} feature names given for {n_features or 1} features")
    out = options.output_path(args, args.model)
    ident = options.card_identity(args, out)
    card = sklearn_convert.make_card(est, ident["name"], args.version, names, args.labels,
                                     args.description)
    proto = sklearn_convert.convert(est, n_features, args.opset, ident["name"])
    write_and_verify(proto, out, card, sklearn_convert.SklearnSource(est), args,
                     options.tolerance(args, trees=sklearn_convert.is_trees(est)))
