"""The Open Inference Protocol routes (functions.oip.routes) in the OpenAPI document.

Every /v2 answer that is not a success is the protocol's ``{"error": "message"}`` (400 for
bad input, 404 for an unknown model, version or route, 503 while not ready). The health
routes answer KServe's bodies. The model's name and version path parameters list the one
model served; anything else is a 404.
"""

from __future__ import annotations

from typing import Any

from functions.codecs.v2 import MAX_DIM
from functions.codecs.v2_tensors import v2_datatype
from functions.codecs.values import value_schema
from functions.config.card import TensorSpec
from functions.model.onnx_model import OnnxModel

Schema = dict[str, Any]
REF = "#/components/schemas/"
WHY = {400: "the request does not fit the model's signature (the message names the input). "
            "Also refused although no JSON Schema can state it: data whose count differs "
            "from its shape, ragged nested data, a binary body whose JSON header or "
            "tensors do not fit, inputs the model itself refuses, inputs for which the "
            "model's output is not finite (NaN or infinity: never answered)",
       404: "no such model, version or route", 413: "the body is over MAX_BODY_BYTES",
       415: "a Content-Encoding other than gzip or deflate",
       503: "the model is not ready, this instance is shutting down, or (infer) overloaded: "
            "its memory for requests in flight stayed full for ADMISSION_WAIT_SECONDS; "
            "Retry-After says when to send again"}


def _errors(*statuses: int) -> dict[str, Schema]:
    return {str(s): {"description": WHY[s], "content": {"application/json": {
        "schema": {"$ref": REF + "V2Error"}}}} for s in statuses}


def _data_name(dtype: str) -> str:
    return "V2Data" + v2_datatype(dtype)


def _data_schema(dtype: str) -> Schema:
    """``data`` of a tensor of numpy ``dtype``: row-major values, flat or nested, each a
    value its datatype holds (codecs.values; the count must be the shape's, which no
    JSON Schema can say: a mismatch is refused, naming both)."""
    value = value_schema("string" if dtype in ("str", "object") else dtype)
    return {"type": "array", "items": {"anyOf": [value, {"$ref": REF + _data_name(dtype)}]}}


def _tensor_in(spec: TensorSpec, width: int | None) -> Schema:
    """One entry of ``inputs`` for graph input ``spec`` (``width``: the card's feature
    count, which pins a row input's dynamic last dim)."""
    dims = [d if isinstance(d, int) else None for d in spec.shape]
    if width is not None and dims and dims[-1] is None:
        dims[-1] = width
    size = {"type": "integer", "minimum": 0, "maximum": MAX_DIM}
    return {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
        "name": {"const": spec.name}, "datatype": {"const": v2_datatype(spec.dtype)},
        "shape": {"type": "array", "items": size, "minItems": len(dims), "maxItems": len(dims),
                  "prefixItems": [size if d is None else {"const": d} for d in dims]},
        "data": {"$ref": REF + _data_name(spec.dtype)},
        "parameters": {"type": ["object", "null"],
                       "not": {"type": "object", "required": ["binary_data_size"]},
                       "description": "binary_data_size: in binary bodies only"}}}


def _infer_request(model: OnnxModel) -> Schema:
    """Every graph input exactly once (in any order), and the outputs wanted. An optional
    field sent as null is taken as absent (as the decoder, codecs.v2, reads it)."""
    row = model.row_input
    inputs = [_tensor_in(s, row.n_features if row and row.name == s.name else None)
              for s in model.inputs]
    flag = {"type": "boolean"}
    return {"type": "object", "required": ["inputs"], "properties": {
        "id": {"type": ["string", "null"]},
        "parameters": {"type": ["object", "null"], "properties": {"binary_data_output": flag}},
        "inputs": {"type": "array", "items": {"anyOf": inputs}, "minItems": len(inputs),
                   "maxItems": len(inputs),
                   "allOf": [{"contains": {"type": "object", "required": ["name"],
                                           "properties": {"name": {"const": s.name}}}}
                             for s in model.inputs]},
        "outputs": {"type": ["array", "null"], "items": {
            "type": "object", "required": ["name"], "properties": {
                "name": {"enum": [s.name for s in model.outputs]},
                "parameters": {"type": ["object", "null"], "properties": {"binary_data": flag},
                               "not": {"type": "object", "required": ["classification"]}}}}}}}


def _flag(name: str) -> Schema:
    """KServe's health body: ``{name: true}`` (its SDK reads the flag)."""
    return {"type": "object", "required": [name], "properties": {name: {"const": True}}}


def _schemas(model: OnnxModel) -> dict[str, Schema]:
    tensor_meta = {"type": "object", "required": ["name", "datatype", "shape"], "properties": {
        "name": {"type": "string"}, "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}}}}
    return {
        "V2Error": {"type": "object", "required": ["error"],
                    "properties": {"error": {"type": "string"}}},
        "V2ModelReady": {"type": "object", "required": ["name", "ready"], "properties": {
            "name": {"const": model.card.name}, "ready": {"const": True}}},
        "V2InferRequest": _infer_request(model),
        **{_data_name(s.dtype): _data_schema(s.dtype) for s in model.inputs},
        "V2InferResponse": {"type": "object", "required": ["model_name", "outputs"],
                            "properties": {
            "model_name": {"type": "string"}, "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {"type": "array", "items": {**tensor_meta, "properties": {
                **tensor_meta["properties"], "data": {"type": "array"},
                "parameters": {"type": "object"}}}}}},
        "V2ModelMetadata": {"type": "object", "required": ["name", "platform", "inputs",
                                                           "outputs"], "properties": {
            "name": {"type": "string"}, "versions": {"type": "array",
                                                     "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": tensor_meta},
            "outputs": {"type": "array", "items": tensor_meta}}},
    }


def _get(op: str, summary: str, ok: Schema, *failures: int) -> Schema:
    return {"get": {"operationId": op, "summary": summary, "responses": {
        "200": ok, **_errors(*failures)}}}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _model_paths(base: str, suffix: str, params: list[Schema]) -> dict[str, Schema]:
    """Metadata, ready, config and infer under ``base`` (with or without a version)."""
    def with_params(item: Schema) -> Schema:
        return {"parameters": params, **item}
    infer = {"post": {
        "operationId": f"v2Infer{suffix}", "summary": "Inference (JSON or binary tensors)",
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": REF + "V2InferRequest"}},
            "application/octet-stream": {"schema": {
                "type": "string", "format": "binary", "description": "JSON header, then "
                "binary tensors; Inference-Header-Content-Length gives its size"}}}},
        "responses": {"200": {"description": "outputs", "content": {
            "application/json": {"schema": {"$ref": REF + "V2InferResponse"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            **_errors(400, 404, 413, 415, 503)}}}
    return {
        base: with_params(_get(f"v2ModelMetadata{suffix}", "Model metadata",
                               _json({"$ref": REF + "V2ModelMetadata"}, "metadata"), 404, 503)),
        base + "/ready": with_params(_get(f"v2ModelReady{suffix}", "Model readiness",
                                          _json({"$ref": REF + "V2ModelReady"}, "ready"),
                                          404, 503)),
        base + "/config": with_params(_get(f"v2ModelConfig{suffix}", "Triton-style config",
                                           _json({"type": "object"}, "config"), 404, 503)),
        base + "/infer": with_params(infer),
    }


def oip_paths(model: OnnxModel) -> tuple[dict[str, Schema], dict[str, Schema]]:
    """(paths, component schemas) of the /v2 routes for ``model``."""
    name = {"name": "model_name", "in": "path", "required": True,
            "schema": {"type": "string", "enum": [model.card.name]}}
    version = {"name": "model_version", "in": "path", "required": True,
               "schema": {"type": "string", "enum": [model.card.version]}}
    server = {"type": "object", "required": ["name", "version", "extensions"], "properties": {
        "name": {"type": "string"}, "version": {"type": "string"},
        "extensions": {"type": "array", "items": {"type": "string"}}}}
    paths = {
        "/v2": _get("v2Server", "Server metadata", _json(server, "metadata")),
        "/v2/health/live": _get("v2Live", "Liveness", _json(_flag("live"), "alive")),
        "/v2/health/ready": _get("v2Ready", "Readiness", _json(_flag("ready"), "ready"), 503),
        **_model_paths("/v2/models/{model_name}", "", [name]),
        **_model_paths("/v2/models/{model_name}/versions/{model_version}", "Version",
                       [name, version]),
    }
    return paths, _schemas(model)
