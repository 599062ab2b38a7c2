"""The Open Inference Protocol routes (functions.oip.routes) in the OpenAPI document.

Every /v2 answer that is not a success is the protocol's ``{"error": "message"}`` (400 for
bad input, 404 for an unknown model, version or route, 503 while not ready). The model's
name and version path parameters list the one model served; anything else is a 404.
"""

from __future__ import annotations

from typing import Any

from functions.codecs.v2_tensors import v2_datatype
from functions.model.onnx_model import OnnxModel

Schema = dict[str, Any]
REF = "#/components/schemas/"
WHY = {400: "the request does not fit the model's signature (the message names the input)",
       404: "no such model, version or route", 413: "the body is over MAX_BODY_BYTES",
       415: "a Content-Encoding other than gzip or deflate", 503: "the model is not ready"}


def _errors(*statuses: int) -> dict[str, Schema]:
    return {str(s): {"description": WHY[s], "content": {"application/json": {
        "schema": {"$ref": REF + "V2Error"}}}} for s in statuses}


def _tensor_in(name: str, dtype: str, rank: int) -> Schema:
    """One entry of ``inputs`` for graph input ``name``."""
    return {"type": "object", "required": ["name", "shape", "datatype"], "properties": {
        "name": {"const": name}, "datatype": {"const": v2_datatype(dtype)},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0},
                  "minItems": rank, "maxItems": rank},
        "data": {"type": "array", "description": "row-major values, flat or nested"},
        "parameters": {"type": "object", "properties": {
            "binary_data_size": {"type": "integer", "minimum": 0}}}}}


def _schemas(model: OnnxModel) -> dict[str, Schema]:
    tensor_meta = {"type": "object", "required": ["name", "datatype", "shape"], "properties": {
        "name": {"type": "string"}, "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}}}}
    outputs = [s.name for s in model.outputs]
    return {
        "V2Error": {"type": "object", "required": ["error"],
                    "properties": {"error": {"type": "string"}}},
        "V2InferRequest": {"type": "object", "required": ["inputs"], "properties": {
            "id": {"type": "string"}, "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": {"anyOf": [
                _tensor_in(s.name, s.dtype, len(s.shape)) for s in model.inputs]}},
            "outputs": {"type": "array", "items": {
                "type": "object", "required": ["name"], "properties": {
                    "name": {"enum": outputs}, "parameters": {"type": "object"}}}}}},
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
                                          {"description": "ready (no body)"}, 404, 503)),
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
        "/v2/health/live": _get("v2Live", "Liveness", {"description": "alive (no body)"}),
        "/v2/health/ready": _get("v2Ready", "Readiness", {"description": "ready (no body)"},
                                 503),
        **_model_paths("/v2/models/{model_name}", "", [name]),
        **_model_paths("/v2/models/{model_name}/versions/{model_version}", "Version",
                       [name, version]),
    }
    return paths, _schemas(model)
