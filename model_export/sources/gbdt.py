"""The ``gbdt`` subcommand: a native LightGBM / XGBoost booster -> ONNX + card, verified.

Accepts a LightGBM text model (``.txt``), an XGBoost JSON/UBJSON model (``.json``,
``.ubj``) or a joblib/pickle file holding a Booster; a pickled scikit-learn API model
(``LGBMClassifier``, a Pipeline ending in ``XGBRegressor``...) goes the ``sklearn`` way,
which converts it with the same onnxmltools converters. Parity allows a share of
``gbdt_convert.OUTLIER_SHARE`` outliers by default (float32 thresholds; see ``gbdt_convert``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from functions.config.card import ModelCard
from model_export import card_files, options
from model_export.exit_codes import InputError
from model_export.sources import (
    gbdt_convert,
    sklearn,  # the sklearn subcommand
)
from model_export.sources.write_and_verify import write_and_verify

PICKLES = (".joblib", ".pkl", ".pickle")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gbdt", help="LightGBM / XGBoost booster (native file or pickle) to "
                       "ONNX", description=__doc__)
    p.add_argument("model", type=Path, help="LightGBM .txt, XGBoost .json/.ubj, or a "
                   "joblib/pickle file")
    options.add_identity(p, "model file")
    options.add_rows(p)
    options.add_tolerance(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Convert with onnxmltools (no ZipMap), write model + card, verify on sample rows."""
    if args.model.suffix.lower() in PICKLES and _is_sklearn(args.model):
        sklearn.run(args)
        return
    booster = gbdt_convert.load_booster(args.model)
    names = args.feature_names or booster.feature_names or [
        f"x{i}" for i in range(booster.n_features)]
    if len(names) != booster.n_features:
        raise InputError(f"{len(names)} feature names given for {booster.n_features} features")
    labels = args.labels or [str(i) for i in range(booster.n_classes)]
    if booster.classifier and len(labels) != booster.n_classes:
        raise InputError(f"{len(labels)} labels given for {booster.n_classes} classes")
    out = options.output_path(args, args.model)
    ident = options.card_identity(args, out)
    proto = gbdt_convert.convert_booster(booster, ident["name"])
    classifier = booster.classifier
    card = ModelCard(
        name=ident["name"], version=args.version, description=args.description,
        created_at=card_files.now_iso(), task="classification" if classifier else "regression",
        framework=card_files.dist(booster.framework), converter=card_files.dist("onnxmltools"),
        feature_names=names, labels=labels if classifier else None,
        label_output="label" if classifier else None,
        probability_output="probabilities" if classifier else None,
        value_output=None if classifier else "value", allow_nan=True,
        output_meaning=("label: index into labels; probabilities: one column per label"
                        if classifier else "value: the booster's prediction per row"))
    write_and_verify(proto, out, card, gbdt_convert.BoosterSource(booster), args,
                       options.tolerance(args, trees=True))


def _is_sklearn(path: Path) -> bool:
    """Whether a pickle holds a scikit-learn API model (it then goes the sklearn way)."""
    from model_export.exit_codes import NotAModel
    from model_export.sources.sklearn_convert import load

    try:
        load(path)
    except NotAModel:
        return False
    return True
