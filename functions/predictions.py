"""Model outputs (arrays for the unique rows) -> one prediction object per row.

Classifiers answer ``{"label", "probabilities": {label: p}}``, regressors ``{"value"}``
(a list when the model predicts several values per row), embedding models
``{"embedding": [...]}``; a model whose card names no outputs answers every output by name
(nested lists for tensors of any rank).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from functions.card import ModelCard
from functions.tabular import to_python


def float_values(values: np.ndarray) -> list:
    """Array -> Python lists; float32 as short decimals that round-trip to float32.

    ``tolist()`` widens float32 to float64, whose repr carries 17 digits of noise
    (0.015296797268092632). Small arrays get the shortest decimal of each float32; large
    ones 9 significant digits (vectorised), which always read back as the same float32 and
    cut a classifier's JSON answer by about a third.
    """
    if values.dtype != np.float32:
        return to_python(values) if values.ndim == 1 else values.tolist()
    if values.size <= 64 and np.isfinite(values).all():
        # orjson writes a float32 as its shortest round-trip decimal; reading that back
        # gives Python floats that print the same short digits (C speed, both ways)
        return orjson.loads(orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY))
    wide = values.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.power(10.0, np.where(wide != 0, 8 - np.floor(np.log10(np.abs(wide))), 0))
        short = np.round(wide * scale) / scale
    return np.where(np.isfinite(short), short, wide).tolist()


def _labels_for(raw: np.ndarray, labels: list[str] | None) -> list[Any]:
    if labels and raw.dtype.kind in "iu":
        return [labels[i] for i in raw.reshape(-1).tolist()]
    return to_python(raw.reshape(-1))


def shape_predictions(card: ModelCard, outputs: dict[str, np.ndarray], n: int,
                      output_labels: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """``n`` prediction objects, row i built from row i of every output.

    ``output_labels`` names the columns of outputs that came from sequences of maps
    (ZipMap), used when the card has no labels.
    """
    if card.task == "classification" and (card.label_output or card.probability_output):
        return _classifications(card, outputs, n, output_labels or {})
    if card.task == "embedding":
        name = card.embedding_output or next(iter(outputs))
        return [{"embedding": row} for row in float_values(outputs[name].reshape(n, -1))]
    if card.value_output:
        values = outputs[card.value_output]
        flat = values.reshape(n, -1) if values.ndim > 1 else values.reshape(n, 1)
        if flat.shape[1] == 1:
            return [{"value": v} for v in float_values(flat[:, 0])]
        return [{"value": row} for row in float_values(flat)]
    columns = {name: float_values(arr) if arr.ndim else [to_python(arr)] * n
               for name, arr in outputs.items()}
    return [{name: col[i] for name, col in columns.items()} for i in range(n)]


def _classifications(card: ModelCard, outputs: dict[str, np.ndarray], n: int,
                     output_labels: dict[str, list[str]]) -> list[dict[str, Any]]:
    probs = outputs.get(card.probability_output) if card.probability_output else None
    if card.label_output and card.label_output in outputs:
        labels = _labels_for(outputs[card.label_output], card.labels)
    elif probs is not None:
        labels = _labels_for(probs.argmax(axis=1), card.labels)
    else:  # pragma: no cover - card validated against the graph at load
        labels = [None] * n
    if probs is None:
        return [{"label": lab} for lab in labels]
    names = card.labels or output_labels.get(card.probability_output or "") or \
        [str(i) for i in range(probs.shape[1])]
    rows = float_values(probs)
    return [{"label": lab, "probabilities": dict(zip(names, row))}
            for lab, row in zip(labels, rows)]
