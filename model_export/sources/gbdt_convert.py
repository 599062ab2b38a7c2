"""Gradient-boosted trees (LightGBM, XGBoost) to ONNX through onnxmltools' converters.

Two ways in, one graph out (input ``input`` float32 [N, F]; classifiers ``label`` [N] int64
class index and ``probabilities`` [N, C] as a plain tensor, no ZipMap; regressors
``value`` [N, 1]):

- the scikit-learn API (``LGBMClassifier``, ``XGBRegressor``, ...), alone or at the end of a
  Pipeline: ``register_sklearn_converters`` teaches skl2onnx onnxmltools' converters, and
  the ``sklearn`` path converts them like any estimator;
- native boosters (``lightgbm.Booster``, ``xgboost.Booster``): ``load_booster`` reads a
  LightGBM text model, an XGBoost JSON/UBJSON model or a pickle holding either, and
  ``convert_booster`` converts it; ``BoosterSource`` answers for parity.

Trees compare float32 inputs with float32 thresholds in ONNX. XGBoost's thresholds are
float32 already; LightGBM's are doubles (``x <= t``), which the converter rounds to the
nearest float32: rounded up, a row between ``t`` and the rounded value takes the other
branch, and one flipped split moves a default model's output well beyond tolerance.
``exact_thresholds`` stores the largest float32 not above each ``t`` instead, for which
``x <= t`` holds exactly when it holds in LightGBM (any float32 ``x``). Parity still allows
a small share of outliers (``OUTLIER_SHARE``): leaf values add up in float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from model_export import graph_edits
from model_export.exit_codes import InputError, NotAModel, UnsupportedModel

FRAMEWORKS = ("lightgbm", "xgboost")
OUTLIER_SHARE = 0.001
ML_OPSET = 15  # the newest default-domain opset onnxmltools 1.16 emits for trees
ML_DOMAIN_OPSET = 3  # the newest ai.onnx.ml opset its tree converters know


def register_sklearn_converters() -> None:
    """Make skl2onnx convert the LightGBM / XGBoost scikit-learn estimators (idempotent;
    a library that is not installed is simply not registered)."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes as classifier_shapes,
    )
    from skl2onnx.common.shape_calculator import (
        calculate_linear_regressor_output_shapes as regressor_shapes,
    )

    cls_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    try:
        from lightgbm import LGBMClassifier, LGBMRegressor
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        update_registered_converter(LGBMClassifier, "LightGbmLGBMClassifier", classifier_shapes,
                                    convert_lightgbm, options=cls_options)
        update_registered_converter(LGBMRegressor, "LightGbmLGBMRegressor", regressor_shapes,
                                    convert_lightgbm, options={"split": None})
    except ImportError:
        pass
    try:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBClassifier, XGBRegressor

        update_registered_converter(XGBClassifier, "XGBoostXGBClassifier", classifier_shapes,
                                    convert_xgboost, options=cls_options)
        update_registered_converter(XGBRegressor, "XGBoostXGBRegressor", regressor_shapes,
                                    convert_xgboost)
    except ImportError:
        pass


@dataclass
class Booster:
    """A native booster and what it is: framework, task, classes, features."""

    model: Any
    framework: str  # "lightgbm" | "xgboost"
    classifier: bool
    n_classes: int
    n_features: int
    feature_names: list[str]


def load_booster(path: Path) -> Booster:
    """Read a native booster file (see module docstring); NotAModel when it is none."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".txt":
            import lightgbm

            return describe(lightgbm.Booster(model_file=str(path)))
        if suffix in (".json", ".ubj"):
            import xgboost

            booster = xgboost.Booster()
            booster.load_model(str(path))
            return describe(booster)
        import joblib

        return describe(joblib.load(path))
    except NotAModel as exc:
        raise NotAModel(f"{path} {exc.message}") from exc
    except (InputError, ImportError):
        raise
    except Exception as exc:  # each library raises its own types for a bad file
        raise NotAModel(f"{path} is not a LightGBM or XGBoost model (LightGBM .txt, XGBoost "
                        f".json/.ubj, or a pickle of a Booster): {type(exc).__name__}: "
                        f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                        ) from exc


def describe(model: Any) -> Booster:
    """Framework, task, classes and features of a native booster object."""
    kind = f"{type(model).__module__}.{type(model).__name__}"
    if kind.startswith("lightgbm") and type(model).__name__ == "Booster":
        info = model.dump_model(num_iteration=0)
        objective = str(info.get("objective", "")).split()[0]
        n_classes = int(info.get("num_class", 1))
        classifier = objective in ("binary", "multiclass", "multiclassova")
        return Booster(model, "lightgbm", classifier, max(n_classes, 2) if classifier else 0,
                       int(model.num_feature()), list(model.feature_name()))
    if kind.startswith("xgboost") and type(model).__name__ == "Booster":
        import json

        config = json.loads(model.save_config())
        objective = config["learner"]["objective"]["name"]
        n_classes = int(config["learner"]["learner_model_param"].get("num_class", "0"))
        classifier = objective.startswith(("binary:", "multi:"))
        names = list(model.feature_names or [])
        return Booster(model, "xgboost", classifier, max(n_classes, 2) if classifier else 0,
                       int(model.num_features()), names)
    raise NotAModel(f"holds a {type(model).__name__}, not a LightGBM or XGBoost Booster "
                    "(scikit-learn API models go through `sklearn`)")


def convert_booster(booster: Booster, name: str) -> onnx.ModelProto:
    """The graph of the module docstring for a native booster."""
    from onnxmltools import convert_lightgbm, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    types = [("input", FloatTensorType([None, booster.n_features]))]
    try:
        if booster.framework == "lightgbm":
            proto = convert_lightgbm(booster.model, name=name, initial_types=types,
                                     zipmap=False, target_opset=ML_OPSET)
        else:
            proto = convert_xgboost(booster.model, name=name, initial_types=types,
                                    target_opset=ML_OPSET)
    except Exception as exc:  # converter errors have no common base; name the model
        raise UnsupportedModel(f"onnxmltools cannot convert this {booster.framework} booster: "
                               f"{str(exc).strip().splitlines()[0]}") from exc
    exact_thresholds(proto, booster.model)
    tidy(proto, booster.classifier)
    return proto


def exact_thresholds(proto: onnx.ModelProto, model: Any) -> None:
    """LightGBM ``model``'s split thresholds in ``proto`` made exact for float32 inputs (see
    the module docstring); anything else is left alone. A tree ensemble node is changed
    only when its splits are the booster's, one for one."""
    booster = getattr(model, "booster_", model)
    if type(booster).__module__.split(".")[0] != "lightgbm":
        return
    thresholds: dict[tuple[int, int, float], float] = {}
    count = 0
    for tree_id, tree in enumerate(booster.dump_model()["tree_info"]):
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node and "threshold" in node:
                t = float(node["threshold"])
                key = (tree_id, int(node["split_feature"]), float(np.float32(t)))
                thresholds[key] = min(t, thresholds.get(key, t))
                count += 1
                stack += [node["left_child"], node["right_child"]]
    for node in proto.graph.node:
        if node.domain == "ai.onnx.ml" and node.op_type.startswith("TreeEnsemble"):
            _round_down(node, thresholds, count)


def _round_down(node: onnx.NodeProto, thresholds: dict[tuple[int, int, float], float],
                count: int) -> None:
    attrs = {a.name: a for a in node.attribute}
    if "nodes_values" not in attrs:
        return
    modes = list(attrs["nodes_modes"].strings)
    if sum(m != b"LEAF" for m in modes) != count:
        return  # not this booster's trees
    values = np.array(attrs["nodes_values"].floats, dtype=np.float32)
    for i, (tree, feature, mode) in enumerate(zip(attrs["nodes_treeids"].ints,
                                                  attrs["nodes_featureids"].ints, modes)):
        t = thresholds.get((tree, feature, float(values[i])))
        if mode == b"BRANCH_LEQ" and t is not None and float(values[i]) > t:
            values[i] = np.nextafter(values[i], np.float32(-np.inf))
    del attrs["nodes_values"].floats[:]
    attrs["nodes_values"].floats.extend(values.tolist())


def tidy(proto: onnx.ModelProto, classifier: bool) -> None:
    """The card's output names, a dynamic batch axis on every output, one opset per domain."""
    graph_edits.dedupe_opsets(proto)
    graph_edits.batch_outputs(proto)
    outputs = [o.name for o in proto.graph.output]
    if classifier:
        graph_edits.rename_output(proto, outputs[0], "label")
        graph_edits.rename_output(proto, outputs[1], "probabilities")
    else:
        graph_edits.rename_output(proto, outputs[0], "value")


class BoosterSource:
    """The native booster answering with the graph's output names (see ``verify``)."""

    def __init__(self, booster: Booster) -> None:
        from model_export.card_files import dist

        self.booster = booster
        self.description = (f"{booster.framework} {dist(booster.framework)['version']} "
                            f"{'classifier' if booster.classifier else 'regressor'} Booster")

    def predict(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        X = next(iter(feeds.values()))
        if self.booster.framework == "xgboost":
            import xgboost

            raw = self.booster.model.predict(xgboost.DMatrix(X))
        else:
            raw = self.booster.model.predict(X)
        raw = np.asarray(raw)
        if not self.booster.classifier:
            return {"value": raw.reshape(-1, 1)}
        probs = np.stack([1 - raw, raw], axis=1) if raw.ndim == 1 else raw
        return {"label": probs.argmax(axis=1), "probabilities": probs}
