"""The OpenAI embeddings routes in the OpenAPI document, stated from what they serve.

``openai_paths`` gives the paths and components for an embedding model with a tokenizer:
the request as ``codecs.openai_embeddings`` decodes it (the served names, the input
limit, token ids when taken, ``dimensions`` as the card allows), the answers and OpenAI's
error shape. For any other model it states the 404 the routes answer.
"""

from __future__ import annotations

from typing import Any

from functions.codecs.openai_embeddings import FORMATS, OpenAIModel, served_for, vocab_size
from functions.codecs.plans import Plan, TextPlan
from functions.config.settings import Settings
from functions.model.onnx_model import OnnxModel

Schema = dict[str, Any]
REF = "#/components/schemas/"
ERROR: Schema = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["message", "type", "param", "code"], "properties": {
        "message": {"type": "string"}, "type": {"type": "string"},
        "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}}}
WHY = {400: "the body is not JSON or not a valid request (param names the field). Refusals "
            "no JSON Schema can state come with their own code: context_length_exceeded "
            "(an input over the model's token limit, never cut silently), model_refused and "
            "non_finite_output (an input the model could not embed)",
       404: "model_not_found: the model named is not served here", 413: "the body is over "
       "MAX_BODY_BYTES", 415: "Content-Type is not JSON",
       503: "the model is not ready, this instance is shutting down, or (code overloaded) "
            "its memory for requests in flight stayed full for ADMISSION_WAIT_SECONDS; "
            "Retry-After says when to send again"}


def _errors(*statuses: int) -> dict[str, Schema]:
    return {str(s): {"description": WHY[s], "content": {"application/json": {
        "schema": {"$ref": REF + "OpenAIError"}}}} for s in statuses}


def _input(served: OpenAIModel, plan: TextPlan) -> Schema:
    text = {"type": "string", "minLength": 1}
    forms = [text, {"type": "array", "items": text, "minItems": 1,
                    "maxItems": served.max_inputs}]
    if served.token_ids:
        vocab = vocab_size(plan)
        ids = {"type": "array", "minItems": 1, "maxItems": plan.spec.max_length,
               "items": {"type": "integer", "minimum": 0, "maximum": vocab - 1}}
        forms += [ids, {"type": "array", "items": ids, "minItems": 1,
                        "maxItems": served.max_inputs}]
    return {"anyOf": forms, "description": "text, or a list of texts"
            + ("; or token ids of the model's own tokenizer" if served.token_ids else "")}


def _dimensions(served: OpenAIModel) -> Schema:
    width = served.width
    if served.shortened:
        shorter: Schema = {"type": "integer", "minimum": 1}
        if width is not None:
            shorter["maximum"] = width
        return {"anyOf": [{"type": "null"}, shorter],
                "description": "the first values of each embedding (re-normalised)"}
    return {"anyOf": [{"type": "null"}, *([{"const": width}] if width else [])],
            "description": "this model was not trained for shortened embeddings: only its "
                           "full width"}


def request_schema(served: OpenAIModel, plan: TextPlan) -> Schema:
    """The body of ``POST /v1/embeddings``; keys OpenAI does not define are ignored."""
    return {"type": "object", "required": ["input", "model"], "properties": {
        "input": _input(served, plan),
        "model": {"type": "string", "enum": list(served.names)},
        "encoding_format": {"enum": [*FORMATS, None], "default": "float",
                            "description": "base64: little-endian float32"},
        "dimensions": _dimensions(served),
        "user": {"type": ["string", "null"], "description": "accepted, ignored"}}}


RESPONSE: Schema = {"type": "object", "required": ["object", "data", "model", "usage"],
                    "properties": {
    "object": {"const": "list"}, "model": {"type": "string"},
    "data": {"type": "array", "items": {
        "type": "object", "required": ["object", "index", "embedding"], "properties": {
            "object": {"const": "embedding"}, "index": {"type": "integer", "minimum": 0},
            "embedding": {"anyOf": [{"type": "array", "items": {"type": "number"}},
                                    {"type": "string", "description": "base64"}]}}}},
    "usage": {"type": "object", "required": ["prompt_tokens", "total_tokens"], "properties": {
        "prompt_tokens": {"type": "integer", "minimum": 0},
        "total_tokens": {"type": "integer", "minimum": 0}}}}}
MODELS: Schema = {"type": "object", "required": ["object", "data"], "properties": {
    "object": {"const": "list"}, "data": {"type": "array", "items": {
        "type": "object", "required": ["id", "object", "created", "owned_by"], "properties": {
            "id": {"type": "string"}, "object": {"const": "model"},
            "created": {"type": "integer"}, "owned_by": {"type": "string"}}}}}}


def _unavailable() -> dict[str, Schema]:
    """The routes as a model that is no embedding model answers them: 404 whatever is sent."""
    why = "only for an embedding model with a tokenizer: this model answers 404"
    post = {"summary": f"OpenAI-compatible embeddings, {why}",
            "requestBody": {"content": {"application/json": {"schema": {}}}},
            "responses": _errors(404, 413, 415, 503)}
    get = {"summary": f"OpenAI-compatible models list, {why}", "responses": _errors(404, 503)}
    return _four(post, get)


def _four(post: Schema, get: Schema) -> dict[str, Schema]:
    """The two routes under /v1 and at the root."""
    return {"/v1/embeddings": {"post": {**post, "operationId": "openaiEmbeddings"}},
            "/embeddings": {"post": {**post, "operationId": "openaiEmbeddingsNoPrefix"}},
            "/v1/models": {"get": {**get, "operationId": "openaiModels"}},
            "/models": {"get": {**get, "operationId": "openaiModelsNoPrefix"}}}


def openai_paths(model: OnnxModel, plan: Plan,
                 settings: Settings) -> tuple[dict[str, Schema], dict[str, Schema]]:
    """(paths, components) of the OpenAI routes for ``model``: for any model but an
    embedding model with a tokenizer, the 404 they answer."""
    if model.card.task != "embedding" or not isinstance(plan, TextPlan):
        return _unavailable(), {"OpenAIError": ERROR}
    served = served_for(model, settings)
    post = {"summary": "Embeddings, OpenAI-compatible (openai SDK, LangChain)",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": REF + "EmbeddingRequest"}}}},
            "responses": {"200": {"description": "one embedding per input, in order", "content":
                                  {"application/json": {"schema": RESPONSE}}},
                          **_errors(400, 404, 413, 415, 503)}}
    get = {"summary": "The served model's names, OpenAI-compatible",
           "responses": {"200": {"description": "the card's name and the aliases", "content":
                                 {"application/json": {"schema": MODELS}}}, **_errors(503)}}
    return _four(post, get), {"EmbeddingRequest": request_schema(served, plan),
                              "OpenAIError": ERROR}
