"""JSON Schemas (OpenAPI 3.1 dialect) of one model's instances and predictions.

The request side comes from the model's plan (``plan.describe()``: format, inputs with
dtype and per-instance shape, feature names, the tokenizer's text field) and the value
rules (``codecs.values.value_schema``); the answer side from the card (task, labels,
named outputs) and the graph's outputs, following ``codecs.predictions.shape_of`` rule
by rule. Model numbers are written by
orjson, which writes NaN and infinities as ``null``: every model value may be null.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from functions.codecs.plans import Plan, TabularPlan
from functions.codecs.values import value_schema
from functions.config.card import ModelCard, TensorSpec

Schema = dict[str, Any]
OUT_NUMBER: Schema = {"type": ["number", "null"]}


def nested(item: Schema, shape: list[int | None]) -> Schema:
    """``item`` nested in arrays of ``shape`` (None: any length), built without recursion."""
    schema = item
    for dim in reversed(shape):
        schema = {"type": "array", "items": schema}
        if dim is not None:
            schema["minItems"] = schema["maxItems"] = dim
    return schema


def _input_value(spec: dict[str, Any], allow_nan: bool) -> Schema:
    """One instance's value for one graph input (a bare scalar also fits a shape of [1])."""
    item = value_schema(spec["dtype"], allow_nan)
    shape = spec["instance_shape"]
    if shape in ([1], [None]) and spec["dtype"] != "string":
        return {"anyOf": [item, nested(item, shape)]}
    if spec["dtype"] == "string":
        return {"anyOf": [item, nested(item, [1])]} if shape else item
    return nested(item, shape)


def _keyed(plan: Plan, allow_nan: bool) -> Schema:
    """An instance as an object keyed by name (features, inputs, or the text field)."""
    info = plan.describe()
    if info["format"] == "text":
        field = info["tokenizer"]["text_field"]  # other keys are ignored
        return {"type": "object", "properties": {field: {"type": "string"}}, "required": [field]}
    if isinstance(plan, TabularPlan):
        schema = plan.schema
        cell = value_schema(info["inputs"][0]["dtype"], allow_nan)
        props: dict[str, Schema] = {name: cell for name in schema.feature_names}
        props.update({name: {} for name in sorted(schema.extra_fields)})
        return {"type": "object", "properties": props, "additionalProperties": False,
                "required": [n for n in schema.feature_names if n not in schema.optional]}
    inputs = info["inputs"]
    return {"type": "object", "additionalProperties": False,
            "properties": {s["name"]: _input_value(s, allow_nan) for s in inputs},
            "required": [s["name"] for s in inputs]}


def instance_schema(plan: Plan, allow_nan: bool) -> Schema:
    """What one element of ``instances`` may be, for this model."""
    info = plan.describe()
    keyed = _keyed(plan, allow_nan)
    if info["format"] == "text":
        return {"description": info["instance"], "anyOf": [{"type": "string"}, keyed]}
    if isinstance(plan, TabularPlan):
        schema = plan.schema
        cell = value_schema(info["inputs"][0]["dtype"], allow_nan)
        row = {"type": "array", "items": cell, "minItems": schema.width,
               "maxItems": schema.width,
               "title": "features in order: " + ", ".join(schema.feature_names)}
        forms = [row, keyed]
        if plan.unwraps:  # {"input": [...]}: the row under the graph input's name
            forms.append({"type": "object", "properties": {plan.input: row},
                          "required": [plan.input], "additionalProperties": False})
        return {"description": info["instance"], "anyOf": forms}
    inputs = info["inputs"]
    if len(inputs) == 1:
        return {"description": info["instance"],
                "anyOf": [_input_value(inputs[0], allow_nan), keyed]}
    return {"description": info["instance"], **keyed}


def columnar_schema(plan: Plan, allow_nan: bool, instance: Schema, cap: int,
                    per_item: bool) -> Schema:
    """TF Serving's columnar ``inputs``: a list of instances, or one batch per name (of one
    length: JSON Schema cannot say so; a body whose batches differ is refused with the
    code ``columns_differ_in_length``). ``per_item``: bad items are answered one by one
    (/batch-predict), so any item and any name is taken here."""
    batch = {"type": "array", "minItems": 1, "maxItems": cap}
    listed = {**batch, "items": {} if per_item else instance}
    if per_item:
        return {"anyOf": [listed, {"type": "object", "minProperties": 1,
                                   "additionalProperties": batch}]}
    keyed = _keyed(plan, allow_nan)
    extra = keyed.get("additionalProperties", True)
    return {"anyOf": [listed, {
        "type": "object", "minProperties": 1, "required": keyed["required"],
        "properties": {n: {**batch, "items": v} for n, v in keyed["properties"].items()},
        "additionalProperties": batch if extra is not False else False}]}


def _output_value(spec: TensorSpec) -> Schema:
    """One row of an output tensor as ``float_values``/``to_python`` write it."""
    try:
        kind = np.dtype(spec.dtype).kind
    except TypeError:  # a sequence of maps and the like: written as the converter gives it
        return {}
    item: Schema = {"type": "string"} if kind in "OSU" else (
        {"type": "boolean"} if kind == "b" else
        {"type": "integer"} if kind in "iu" else OUT_NUMBER)
    return nested(item, [None] * max(len(spec.shape) - 1, 0))


def _label(card: ModelCard, outputs: dict[str, TensorSpec]) -> Schema:
    spec = outputs.get(card.label_output or "")
    if card.labels and (spec is None or np.dtype(spec.dtype).kind in "iu"):
        return {"type": "string", "enum": list(card.labels)}
    if spec is not None and spec.dtype in ("str", "object"):
        return {"type": "string"}
    return {"type": ["integer", "string"]}


def prediction_schema(card: ModelCard, outputs: list[TensorSpec],
                      output_labels: dict[str, list[str]], text: bool) -> Schema:
    """One element of ``predictions`` for a scored instance."""
    by_name = {s.name: s for s in outputs}
    props: dict[str, Schema]
    if card.task == "classification" and (card.label_output or card.probability_output):
        props = {"label": _label(card, by_name)}
        if card.probability_output:
            names = card.labels or output_labels.get(card.probability_output)
            probs: Schema = {"type": "object", "additionalProperties": OUT_NUMBER}
            if names:
                probs["properties"] = {str(n): OUT_NUMBER for n in names}
            props["probabilities"] = probs
    elif card.task == "embedding":
        props = {"embedding": {"type": "array", "items": OUT_NUMBER}}
    elif card.value_output:
        props = {"value": {"anyOf": [OUT_NUMBER, {"type": "array", "items": OUT_NUMBER}]}}
    else:
        props = {s.name: _output_value(s) for s in outputs}
    schema: Schema = {"type": "object", "properties": props, "required": list(props)}
    if text:
        schema["properties"]["truncated"] = {
            "const": True, "description": "the text was cut at the tokenizer's max_length"}
    return schema
