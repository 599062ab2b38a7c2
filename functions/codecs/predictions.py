"""Predictions: model outputs (arrays for the unique rows) as columns or as row objects.

Classifiers answer ``{"label", "probabilities": {label: p}}``, regressors ``{"value"}``
(a list when the model predicts several values per row), embedding models
``{"embedding": [...]}``; a model whose card names no outputs answers every output by name
(nested lists for tensors of any rank).

``shape_of`` is the one rule, chosen once per model (``shape_for``): one column per field
(arrays kept as arrays, which orjson writes in one call: the ``format=columns`` answer of
large batches), with the classes the probability columns stand for; and one object per
row (the default answer), built from the outputs with the same values.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from functions.codecs.values import to_python
from functions.config.card import ModelCard, TensorSpec

FEW_FLOATS = 64
"""Arrays of up to this many float32 values are written as each value's shortest decimal."""


def float_values(values: np.ndarray, few_float32: bool = False) -> list:
    """Array -> Python lists; float32 as short decimals that round-trip to float32.

    ``tolist()`` widens float32 to float64, whose repr carries 17 digits of noise
    (0.015296797268092632). Small arrays get the shortest decimal of each float32; large
    ones 9 significant digits (vectorised), which always read back as the same float32 and
    cut a classifier's JSON answer by about a third. ``few_float32``: the caller knows
    ``values`` is float32 with at most FEW_FLOATS values (from the graph's declared output).
    """
    if not few_float32 and values.dtype.char != "f":  # not float32
        return to_python(values) if values.ndim == 1 else values.tolist()
    if few_float32 or values.size <= FEW_FLOATS:
        # orjson writes a float32 as its shortest round-trip decimal; reading that back
        # gives Python floats that print the same short digits (C speed, both ways). It
        # writes NaN and infinities as null: those arrays take the wide path below.
        raw = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)
        if b"null" not in raw:
            return orjson.loads(raw)
    wide = values.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.power(10.0, np.where(wide != 0, 8 - np.floor(np.log10(np.abs(wide))), 0))
        short = np.round(wide * scale) / scale
    return np.where(np.isfinite(short), short, wide).tolist()


@dataclass(slots=True)
class Columns:
    """Predictions one field at a time; row i of every field belongs to row i."""

    fields: dict[str, np.ndarray | list[Any]]
    classes: list[str] | None = None
    """Classifiers: the label each probability column stands for, in column order."""

    def writable(self) -> dict[str, np.ndarray | list[Any]]:
        """The fields as orjson writes them (it takes C-contiguous arrays only)."""
        return {name: np.ascontiguousarray(v) if isinstance(v, np.ndarray) else v
                for name, v in self.fields.items()}


def _json_ready(values: np.ndarray) -> np.ndarray | list[Any]:
    """Numeric arrays stay arrays (orjson writes them natively, float32 as its shortest
    decimal); strings and objects become lists."""
    return values if values.dtype.kind in "fiub" else to_python(values) \
        if values.ndim == 1 else values.tolist()


class Shape:
    """One model's prediction rule (see the module docstring), chosen once per model by
    ``shape_for``: ``columns`` is the rule; ``rows`` gives the same values one object per
    row, built straight from the outputs. This base answers every output by name."""

    def columns(self, outputs: dict[str, np.ndarray], n: int) -> Columns:
        return Columns({name: _json_ready(arr) if arr.ndim else [to_python(arr)] * n
                        for name, arr in outputs.items()})

    def rows(self, outputs: dict[str, np.ndarray], n: int) -> list[dict[str, Any]]:
        lists = {name: float_values(v) if isinstance(v, np.ndarray) else v
                 for name, v in self.columns(outputs, n).fields.items()}
        return [{name: col[i] for name, col in lists.items()} for i in range(n)]


class _Classes(Shape):
    """``{"label", "probabilities": {label: p}}``; the labels are the card's, else those
    of a ZipMap output (``output_labels``, filled by the model's first call).

    What the graph declares of the two outputs is read once (``specs``): an integer label
    vector indexes the card's labels as it is, and float32 probabilities of a known width
    go to ``float_values`` as such, so a row's answer asks its arrays nothing (each numpy
    attribute read is code the request's CPU caches must hold)."""

    def __init__(self, card: ModelCard, output_labels: dict[str, list[str]],
                 specs: Sequence[TensorSpec] = ()) -> None:
        self.label_output, self.probability_output = card.label_output, card.probability_output
        self.labels, self.output_labels = card.labels, output_labels
        self.label_array = np.array(card.labels, dtype=object) if card.labels else None
        """The card's labels as an object array: indexing it with a label vector picks
        a row's label at C speed (a Python-level lookup per row costs more)."""
        declared = {s.name: s for s in specs}
        label, probs = declared.get(card.label_output or ""), \
            declared.get(card.probability_output or "")
        self.indexes = bool(card.labels) and label is not None and len(label.shape) == 1 \
            and label.dtype.startswith(("int", "uint"))
        """The label output is an integer vector: the card's labels by index."""
        self.width = probs.shape[1] if probs is not None and probs.dtype == "float32" \
            and len(probs.shape) == 2 and isinstance(probs.shape[1], int) else 0
        """Values per row of float32 probabilities (0: not declared so)."""

    def _labels(self, outputs: dict[str, np.ndarray], probs: np.ndarray | None,
                n: int) -> list[Any]:
        raw = outputs.get(self.label_output) if self.label_output else None
        if raw is None:
            if probs is None:  # pragma: no cover - card validated against the graph at load
                return [None] * n
            raw = probs.argmax(axis=1)
        flat = raw if raw.ndim == 1 else raw.reshape(-1)
        if self.label_array is not None and flat.dtype.kind in "iu":
            return self.label_array[flat].tolist()
        return to_python(flat)

    def _names(self, probs: np.ndarray) -> list[str]:
        return self.labels or self.output_labels.get(self.probability_output or "") or \
            [str(i) for i in range(probs.shape[1])]

    def columns(self, outputs: dict[str, np.ndarray], n: int) -> Columns:
        probs = outputs.get(self.probability_output) if self.probability_output else None
        labels = self._labels(outputs, probs, n)
        if probs is None:
            return Columns({"label": labels})
        return Columns({"label": labels, "probabilities": probs}, self._names(probs))

    def rows(self, outputs: dict[str, np.ndarray], n: int) -> list[dict[str, Any]]:
        probs = outputs.get(self.probability_output) if self.probability_output else None
        raw = outputs.get(self.label_output) if self.indexes else None
        if raw is None:
            labels = self._labels(outputs, probs, n)
        elif n == 1:  # one Python lookup beats numpy's indexing machinery
            labels = [self.labels[raw.item()]]  # type: ignore[index]
        else:
            labels = self.label_array[raw].tolist()  # type: ignore[index]
        if probs is None:
            return [{"label": lab} for lab in labels]
        names = self.labels or self._names(probs)
        values = float_values(probs, 0 < n * self.width <= FEW_FLOATS)
        if n == 1:  # the common single prediction, without a comprehension's frame
            return [{"label": labels[0], "probabilities": dict(zip(names, values[0]))}]
        return [{"label": lab, "probabilities": dict(zip(names, row))}
                for lab, row in zip(labels, values)]


class _Single(Shape):
    """One field per row: ``{"embedding": [...]}``, or ``{"value": v}`` (a list when the
    model predicts several values per row). A row's vector stays an array (a view of
    the output): a large batch of embeddings is answered without a Python object per
    value."""

    def __init__(self, field: str, output: str | None) -> None:
        self.field, self.output = field, output

    def _column(self, outputs: dict[str, np.ndarray], n: int) -> np.ndarray:
        values = outputs[self.output or next(iter(outputs))]
        if self.field == "embedding":
            return values.reshape(n, -1)
        flat = values.reshape(n, -1) if values.ndim > 1 else values.reshape(n, 1)
        return flat[:, 0] if flat.shape[1] == 1 else flat

    def columns(self, outputs: dict[str, np.ndarray], n: int) -> Columns:
        return Columns({self.field: self._column(outputs, n)})

    def rows(self, outputs: dict[str, np.ndarray], n: int) -> list[dict[str, Any]]:
        field, column = self.field, self._column(outputs, n)
        if column.ndim == 2 and column.dtype.kind == "f":  # a vector per row: the row
            # itself, which orjson writes in one call (float32 as its shortest decimal),
            # never a Python float per value
            return [{field: row} for row in np.ascontiguousarray(column)]
        return [{field: v} for v in float_values(column)]


def shape_of(card: ModelCard, output_labels: dict[str, list[str]] | None = None,
             specs: Sequence[TensorSpec] = ()) -> Shape:
    """The prediction rule of a model with ``card``; ``output_labels`` names the columns of
    outputs that came from sequences of maps (ZipMap), used when the card has no labels;
    ``specs``: the graph's outputs as declared (what is known of them before any call)."""
    if card.task == "classification" and (card.label_output or card.probability_output):
        return _Classes(card, output_labels if output_labels is not None else {}, specs)
    if card.task == "embedding":
        return _Single("embedding", card.embedding_output)
    if card.value_output:
        return _Single("value", card.value_output)
    return Shape()


_shapes: weakref.WeakKeyDictionary[Any, Shape] = weakref.WeakKeyDictionary()
_last: tuple[weakref.ref[Any], Shape] | None = None


def shape_for(model: Any) -> Shape:
    """``shape_of`` a loaded model (an OnnxModel), built once per model."""
    global _last
    last = _last
    if last is not None and last[0]() is model:
        return last[1]
    shape = _shapes.get(model)
    if shape is None:
        shape = _shapes[model] = shape_of(model.card, model.output_labels, model.outputs)
    _last = (weakref.ref(model), shape)
    return shape


def columns_in_order(cols: Columns | None, src: np.ndarray,
                      notes: dict[int, dict[str, Any]] | None) -> Columns:
    """``cols`` (the kept unique rows) in request order: ``src[i]`` is the row that answers
    instance i, -1 where it failed (null there); each note (e.g. ``truncated``) as a column
    of its own."""
    if cols is None:
        return Columns({})
    if (src >= 0).all():
        fields = {k: v[src] if isinstance(v, np.ndarray) else [v[j] for j in src.tolist()]
                  for k, v in cols.fields.items()}
    else:
        order = src.tolist()
        fields = {}
        for k, v in cols.fields.items():
            values = v if isinstance(v, list) else float_values(v)
            fields[k] = [values[j] if j >= 0 else None for j in order]
    for key in {k for note in (notes or {}).values() for k in note}:
        fields[key] = [notes[i].get(key) if i in notes else None  # type: ignore[index, operator]
                      for i in range(len(src))]
    return Columns(fields, cols.classes)
