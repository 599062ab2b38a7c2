"""JSON Schemas (OpenAPI 3.1 dialect) of one model's instances and predictions.

The request side comes from the model's plan (``plan.describe()``: format, inputs with
dtype and per-instance shape, feature names, the tokenizer's text field) and the value
rules (``codecs.values.value_schema``); the answer side from the card (task, labels,
named outputs) and the graph's outputs, following ``codecs.answers.shape_columns`` rule
by rule. Model numbers are written by
orjson, which writes NaN and infinities as ``null``: every model value may be null.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from functions.card import ModelCard, TensorSpec
from functions.codecs.plans import Plan, TabularPlan
from functions.codecs.values import value_schema

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


def instance_schema(plan: Plan, allow_nan: bool) -> Schema:
    """What one element of ``instances`` may be, for this model."""
    info = plan.describe()
    if info["format"] == "text":
        field = info["tokenizer"]["text_field"]
        return {"description": info["instance"], "anyOf": [
            {"type": "string"},
            {"type": "object", "properties": {field: {"type": "string"}}, "required": [field]}]}
    if isinstance(plan, TabularPlan):
        schema = plan.schema
        cell = value_schema(info["inputs"][0]["dtype"], allow_nan)
        props: dict[str, Schema] = {name: cell for name in schema.feature_names}
        props.update({name: {} for name in sorted(schema.extra_fields)})
        required = [n for n in schema.feature_names if n not in schema.optional]
        return {"description": info["instance"], "anyOf": [
            {"type": "array", "items": cell, "minItems": schema.width,
             "maxItems": schema.width, "title": "features in order: "
             + ", ".join(schema.feature_names)},
            {"type": "object", "properties": props, "required": required,
             "additionalProperties": False}]}
    inputs = info["inputs"]
    keyed: Schema = {"type": "object", "additionalProperties": False,
                     "properties": {s["name"]: _input_value(s, allow_nan) for s in inputs},
                     "required": [s["name"] for s in inputs]}
    if len(inputs) == 1:
        return {"description": info["instance"],
                "anyOf": [_input_value(inputs[0], allow_nan), keyed]}
    return {"description": info["instance"], **keyed}


def columnar_schema(plan: Plan, instance: Schema, cap: int) -> Schema:
    """TF Serving's columnar ``inputs``: a list of instances, or a batch per name."""
    info = plan.describe()
    if isinstance(plan, TabularPlan):
        names = list(plan.schema.feature_names)
    elif info["format"] == "text":
        names = [info["tokenizer"]["text_field"]]
    else:
        names = [s["name"] for s in info["inputs"]]
    return {"anyOf": [{"type": "array", "items": instance, "minItems": 1, "maxItems": cap},
                      {"type": "object", "additionalProperties": False,
                       "properties": {n: {"type": "array", "minItems": 1} for n in names}}]}


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
