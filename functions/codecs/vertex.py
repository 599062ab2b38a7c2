"""The request codec of /predict, /batch-predict and Vertex AI: Vertex AI / TF Serving rows.

A body is ``{"instances": [...]}`` (one item per instance; the plan says what an instance
of this model is), or TF Serving's columnar ``{"inputs": {name: batch}}`` (``{"inputs":
batch}`` for a one-input model), turned into instances. Vertex AI's ``parameters`` is
accepted beside either and ignored. ``decode`` returns the plan's ``Inputs``; problems of
single instances are reported per index there, problems of the body as a whole raise
ValidationFailed (422) naming the field, and bytes that are no JSON MalformedJSON (400).

A tabular model's common large batch, one numeric matrix, is read without a Python object
per value (codecs.matrix, the bulk decoder) whenever the plan allows it, from the first
request on. ``body_schema`` states in JSON Schema what ``decode`` takes.
"""

from __future__ import annotations

from typing import Any

from functions.codecs.json_text import may_hold_bools, parse_json
from functions.codecs.matrix import numeric_matrix
from functions.codecs.plans import Inputs, Plan
from functions.codecs.schemas import columnar_schema, instance_schema
from functions.errors import Problem, ValidationFailed

MATRIX_BODY_BYTES = 2048
"""Bodies from this size on are tried as one numeric matrix first; below it orjson's few
microseconds win."""


def decode(body: bytes, plan: Plan, cap: int) -> Inputs:
    """The instances of ``body`` decoded by ``plan``; at most ``cap`` of them."""
    width = plan.matrix_width
    if width and len(body) >= MATRIX_BODY_BYTES:
        matrix = numeric_matrix(body, width)
        if matrix is not None and len(matrix) <= cap:
            return plan.decode(matrix, False)
    doc = parse_json(body)
    instances = doc.get("instances") if type(doc) is dict and len(doc) == 1 else None
    if type(instances) is not list or not 0 < len(instances) <= cap:  # not the common
        instances = instances_of(doc, cap)  # body (only "instances", fine): check it all
    bools = may_hold_bools(body) if len(body) >= MATRIX_BODY_BYTES else True  # a small
    # body's few values are walked at no cost; a large one's bytes are scanned once
    return plan.decode(instances, bools)


def instances_of(body: Any, cap: int) -> list[Any]:
    """The body's instances: ``{"instances": [...]}``, or the columnar ``{"inputs": ...}``
    turned into instances."""
    if not isinstance(body, dict) or ("instances" not in body and "inputs" not in body):
        raise ValidationFailed('body must be an object with an "instances" list '
                               '(or "inputs", columnar)',
                               [Problem("required", None, "instances")])
    if not isinstance(body.get("parameters", {}), dict):
        raise ValidationFailed('"parameters" must be an object',
                               [Problem("must be an object", None, "parameters")])
    instances = body["instances"] if "instances" in body else \
        columns_to_instances(body["inputs"])
    if not isinstance(instances, list):
        raise ValidationFailed('"instances" must be a list',
                               [Problem("must be a list", None, "instances")])
    if not instances:
        raise ValidationFailed('"instances" is empty', [Problem("empty", None, "instances")])
    if len(instances) > cap:
        raise ValidationFailed(f"{len(instances)} instances is over the limit of {cap}",
                               [Problem(f"at most {cap} instances", None, "instances")])
    return instances


def columns_to_instances(inputs: Any) -> list[Any]:
    """TF Serving's columnar ``inputs`` as instances (422 naming the input when unusable)."""
    if not isinstance(inputs, dict):
        if not isinstance(inputs, list):
            raise ValidationFailed('"inputs" must be a list (one input) or an object keyed by '
                                   "input name", [Problem("must be a list or object", None,
                                                          "inputs")])
        return inputs
    lengths = {}
    for name, batch in inputs.items():
        if not isinstance(batch, list):
            raise ValidationFailed(f'"inputs.{name}" must be a list with one item per instance',
                                   [Problem("must be a list", None, name)])
        lengths[name] = len(batch)
    if len(set(lengths.values())) > 1:
        raise ValidationFailed(f'"inputs" batches differ in length: {lengths}',
                               [Problem("batch lengths differ", None, "inputs")],
                               code="columns_differ_in_length")
    n = next(iter(lengths.values()), 0)
    names = list(inputs)
    return [{name: inputs[name][i] for name in names} for i in range(n)]


def body_schema(plan: Plan, allow_nan: bool, cap: int, per_item: bool,
                instance: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON Schema of a body ``decode`` takes, with ``cap`` instances at most;
    ``per_item``: bad instances are answered one by one (/batch-predict), so any item is
    taken; ``instance`` stands for ``instance_schema(plan, allow_nan)`` (a $ref to it)."""
    instance = instance or instance_schema(plan, allow_nan)
    parameters = {"type": "object", "description": "Vertex AI's parameters: accepted, ignored"}
    items = {"description": "any value: a bad instance is answered as an error item"} \
        if per_item else instance
    return {"anyOf": [
        {"type": "object", "required": ["instances"],
         "properties": {"instances": {"type": "array", "items": items, "minItems": 1,
                                      "maxItems": cap}, "parameters": parameters}},
        {"type": "object", "required": ["inputs"], "not": {"required": ["instances"]},
         "properties": {"inputs": columnar_schema(plan, allow_nan, instance, cap, per_item),
                        "parameters": parameters},
         "description": "TF Serving's columnar form: one batch per input or feature"}]}
