"""scikit-learn estimators and Pipelines (preprocessing included) to ONNX with skl2onnx.

The graph has one input ``input``: float32 [N, F] (dynamic batch), or string [N, 1] for a
text pipeline (one that starts with a text vectoriser: no ``n_features_in_`` needed; its
string normaliser is given the ``C.UTF-8`` locale, which slim containers have, where the
converter's default ``en_US.UTF-8`` fails to load). Classifiers answer ``label`` [N] and,
when they have ``predict_proba``, ``probabilities`` [N, C] as a plain tensor (no ZipMap);
regressors answer ``value``. Integer labels are class indices into the card's ``labels``
(rewritten to an argmax when the classes are not 0..K-1). LightGBM / XGBoost estimators,
alone or ending a Pipeline, convert through onnxmltools (``gbdt_convert``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from functions.config.card import ModelCard
from model_export import card_files, graph_edits
from model_export.exit_codes import InputError, NotAModel, UnsupportedModel
from model_export.sources import gbdt_convert

NAN_HANDLERS = ("SimpleImputer", "KNNImputer", "IterativeImputer",
                "HistGradientBoostingClassifier", "HistGradientBoostingRegressor",
                "LGBMClassifier", "LGBMRegressor", "XGBClassifier", "XGBRegressor")
TEXT_VECTORIZERS = ("CountVectorizer", "TfidfVectorizer")
LOCALE = "C.UTF-8"
TEXT_FEATURE = "text"


def load(path: Path) -> Any:
    """The fitted estimator in a joblib/pickle file, or NotAModel saying what is wrong."""
    import joblib
    from sklearn.base import BaseEstimator
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        obj = joblib.load(path)
    except (ModuleNotFoundError, AttributeError) as exc:
        raise InputError(f"{path} refers to code that is not importable here: {exc} "
                         "(install it or add it to PYTHONPATH)") from exc
    except Exception as exc:  # unpickling garbage raises many types; the verdict is one
        raise NotAModel(f"{path} is not a scikit-learn model (joblib/pickle): "
                        f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, BaseEstimator) or not hasattr(obj, "predict"):
        raise NotAModel(f"{path} holds a {type(obj).__name__}, not a scikit-learn estimator")
    try:
        check_is_fitted(obj)
    except NotFittedError as exc:
        raise NotAModel(f"{path}: the {type(obj).__name__} in it is not fitted") from exc
    return obj


class SklearnSource:
    """The estimator answering with the ONNX graph's output names (see ``verify``)."""

    def __init__(self, est: Any) -> None:
        from sklearn import __version__
        from sklearn.base import is_classifier

        self.est = est
        self.description = f"scikit-learn {__version__} {type(est).__name__}"
        self.classifier = is_classifier(est)
        self.has_proba = self.classifier and hasattr(est, "predict_proba")
        classes = getattr(est, "classes_", None)
        self.index_labels = needs_index_labels(classes)

    def predict(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        X = next(iter(feeds.values()))
        if X.dtype == object:  # a text pipeline takes a 1-D sequence of strings
            X = X[:, 0]
        if not self.classifier:
            return {"value": np.asarray(self.est.predict(X))}
        label = np.asarray(self.est.predict(X))
        if self.index_labels:
            label = np.searchsorted(self.est.classes_, label)
        out = {"label": label}
        if self.has_proba:
            out["probabilities"] = np.asarray(self.est.predict_proba(X))
        return out


def needs_index_labels(classes: Any) -> bool:
    """Integer classes other than 0..K-1 (their label output must become an index)."""
    if classes is None or np.asarray(classes).dtype.kind not in "iu":
        return False
    return not np.array_equal(np.asarray(classes), np.arange(len(classes)))


def text_vectorizers(est: Any) -> list[Any]:
    """The text vectorisers in ``est`` (a text pipeline has one first)."""
    return [e for _, e in _walk(est, "model") if type(e).__name__ in TEXT_VECTORIZERS]


def final_step(est: Any) -> Any:
    return est.steps[-1][1] if hasattr(est, "steps") else est


def is_trees(est: Any) -> bool:
    """Whether ``est`` is (or ends in) a LightGBM / XGBoost model."""
    return type(final_step(est)).__module__.split(".")[0] in ("lightgbm", "xgboost")


def convert(est: Any, n_features: int | None, opset: int, name: str) -> onnx.ModelProto:
    """The ONNX graph of ``est`` (see module docstring); ``n_features`` None for text
    pipelines. UnsupportedModel names the culprit."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    gbdt_convert.register_sklearn_converters()
    source = SklearnSource(est)
    texts = text_vectorizers(est)
    types = [("input", StringTensorType([None, 1]) if n_features is None
              else FloatTensorType([None, n_features]))]
    final = final_step(est)
    target: int | dict[str, int] = opset
    if is_trees(est):  # onnxmltools' tree converters know ai.onnx.ml up to version 3
        target = {"": opset, "ai.onnx.ml": gbdt_convert.ML_DOMAIN_OPSET}
    options: dict[int, dict[str, Any]] = {id(v): {"locale": LOCALE} for v in texts}
    if source.classifier:
        options[id(final)] = {"zipmap": False}
    try:
        try:
            proto = convert_sklearn(est, name=name, initial_types=types, options=options,
                                    target_opset=target)
        except NameError as exc:  # classifiers without ZipMap refuse the option itself
            if "zipmap" not in str(exc):
                raise
            del options[id(final)]
            proto = convert_sklearn(est, name=name, initial_types=types, options=options,
                                    target_opset=target)
    except Exception as exc:  # converter errors have no common base; name what failed
        raise UnsupportedModel(_unsupported_message(est, exc)) from exc
    gbdt_convert.exact_thresholds(proto, final)
    graph_edits.dedupe_opsets(proto)
    graph_edits.batch_outputs(proto)
    outputs = [o.name for o in proto.graph.output]
    if not source.classifier:
        graph_edits.rename_output(proto, outputs[0], "value")
    elif not source.has_proba and len(outputs) > 1:
        graph_edits.rename_output(proto, outputs[1], "scores")
    elif source.index_labels:
        graph_edits.label_as_index(proto)
    return proto


def _walk(est: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, est
    for key, value in est.get_params(deep=False).items():
        if hasattr(value, "fit"):
            yield from _walk(value, f"{path}.{key}")
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, tuple) and len(item) > 1 and hasattr(item[1], "fit"):
                    yield from _walk(item[1], f"{path}[{item[0]!r}]")


def _unsupported_message(est: Any, exc: Exception) -> str:
    from skl2onnx import __version__

    text = str(exc).strip()
    culprit = next((f"{p} ({type(e).__name__})" for p, e in reversed(list(_walk(est, "model")))
                    if f".{type(e).__name__}'" in text), f"model ({type(est).__name__})")
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"{culprit} cannot be converted by skl2onnx {__version__}: {first}"


def make_card(est: Any, name: str, version: str, feature_names: list[str],
              labels: list[str] | None, description: str | None) -> ModelCard:
    """The card fields that come from the estimator (signature and sha come on write)."""
    source = SklearnSource(est)
    classes = getattr(est, "classes_", None)
    if source.classifier:
        labels = labels or [str(c) for c in classes]
        if len(labels) != len(classes):
            raise InputError(f"{len(labels)} labels given for {len(classes)} classes")
    kinds = {type(e).__name__ for _, e in _walk(est, "model")}
    framework, converter = card_files.dist("scikit-learn"), card_files.dist("skl2onnx")
    if is_trees(est):
        trees = type(final_step(est)).__module__.split(".")[0]
        framework["trees"] = " ".join(card_files.dist(trees).values())
        converter["trees"] = " ".join(card_files.dist("onnxmltools").values())
    if text_vectorizers(est):
        converter["locale"] = LOCALE
    return ModelCard(
        name=name, version=version, description=description, created_at=card_files.now_iso(),
        task="classification" if source.classifier else "regression",
        framework=framework, converter=converter,
        feature_names=feature_names, labels=labels if source.classifier else None,
        label_output="label" if source.classifier else None,
        probability_output="probabilities" if source.has_proba else None,
        value_output=None if source.classifier else "value",
        output_meaning=_meaning(source, np.asarray(classes).dtype.kind in "iu"),
        allow_nan=bool(kinds & set(NAN_HANDLERS)),
    )


def _meaning(source: SklearnSource, int_classes: bool) -> str:
    if not source.classifier:
        return "value: the regressor's prediction per row"
    text = ("label: index into labels of the predicted class" if int_classes
            else "label: the predicted class label")
    if source.has_proba:
        text += "; probabilities: predict_proba, one column per label"
    return text
