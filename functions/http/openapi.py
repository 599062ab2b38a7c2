"""GET /openapi.json: the OpenAPI 3.1 document of the served model, built once per model.

The document is generated from the model's plan and card (``openapi_schemas``) when a
model becomes ready (``OpenApiDocs.prepare``, a holder ``on_ready`` callback) and cached
per loaded model (a roll-out gets its own document). It covers every route the Router
serves: predictions, health, metadata, metrics, this document and ``/docs``, the Open
Inference Protocol under ``/v2`` (``openapi_oip``), the OpenAI embeddings routes for an
embedding model (``codecs.openai_schemas``), ``POST /events`` when EVENT_ROUTES is on and
the Vertex AI routes when set. Error answers are the package's error contract
(``functions.errors``) with the statuses each route can give.
"""

from __future__ import annotations

import weakref
from typing import Any

import orjson

from functions.codecs.openai_schemas import openai_paths
from functions.codecs.schemas import instance_schema, prediction_schema
from functions.codecs.v2_schemas import oip_paths
from functions.codecs.vertex import body_schema
from functions.config.settings import Settings
from functions.loading.holder import ModelHolder
from functions.model.onnx_model import OnnxModel
from functions.service import PredictionService

Schema = dict[str, Any]
REF = "#/components/schemas/"
PROBLEM: Schema = {"type": "object", "required": ["message"], "properties": {
    "message": {"type": "string"}, "index": {"type": "integer"}, "field": {"type": "string"}}}
ERROR: Schema = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["status", "code", "message"], "properties": {
        "status": {"type": "integer"}, "code": {"type": "string"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"$ref": REF + "Problem"}}}}}}
ITEM_ERROR: Schema = {"type": "object", "required": ["status", "code", "index", "message"],
                      "properties": {"status": {"type": "integer"}, "code": {"type": "string"},
                                     "index": {"type": "integer"}, "message": {"type": "string"},
                                     "details": {"type": "array",
                                                 "items": {"$ref": REF + "Problem"}}}}
FORMAT: Schema = {"name": "format", "in": "query", "required": False,
                  "description": "rows: one object per instance; columns: one array per "
                                 "field, the leaner answer for large batches",
                  "schema": {"type": "string", "enum": ["rows", "columns"], "default": "rows"}}
COLUMNS: Schema = {
    "type": "object", "required": ["outputs", "errors", "unique_rows", "model_version"],
    "properties": {
        "outputs": {"type": "object", "description": "field -> one value per instance, in "
                    "request order (null where the instance failed)",
                    "additionalProperties": {"type": "array"}},
        "classes": {"type": "array", "items": {"type": "string"},
                    "description": "what each probability column stands for"},
        "errors": {"type": "integer", "minimum": 0},
        "failures": {"type": "array", "items": {"$ref": REF + "ItemError"}},
        "unique_rows": {"type": "integer", "minimum": 0}, "model_version": {"type": "string"}}}
WHY = {400: "the body is not JSON, or not the shape this route takes", 404: "no such route",
       413: "the body is over MAX_BODY_BYTES", 415: "Content-Type is not JSON",
       422: "the JSON is fine, its content is not (details name the index and field). "
            "Refusals no JSON Schema can state come with their own code: "
            "columns_differ_in_length (columnar batches of different lengths), "
            "model_refused (a value only the model can find wrong, such as an id outside "
            "its embedding table) and non_finite_output (the model's output for the "
            "instance is NaN or infinite: never answered as a prediction)",
       424: "an external feature lookup failed for good",
       503: "the model is not ready, this instance is shutting down, or (code overloaded, "
            "prediction routes) the instance's memory for requests in flight "
            "(REQUESTS_MEMORY_MB) stayed full for ADMISSION_WAIT_SECONDS; Retry-After says "
            "when to send again"}


def json_content(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def answer(description: str, schema: Schema | None = None) -> Schema:
    """One documented response (``schema`` None: no body)."""
    out: Schema = {"description": description}
    if schema is not None:
        out["content"] = json_content(schema)
    return out


def errors(*statuses: int) -> dict[str, Schema]:
    """The error contract's answers for ``statuses``."""
    return {str(s): answer(WHY[s], {"$ref": REF + "Error"}) for s in statuses}


def prediction_paths(model: OnnxModel, service: PredictionService,
                     settings: Settings) -> dict[str, Schema]:
    """/predict and /batch-predict for ``model``."""
    plan = service.plan(model)

    def body(cap: int, per_item: bool) -> Schema:
        return {"required": True, "content": json_content(body_schema(
            plan, model.card.allow_nan, cap, per_item, {"$ref": REF + "Instance"}))}
    pred = prediction_schema(model.card, model.outputs, model.output_labels, plan.kind == "text")
    failures = (400, 413, 415, 422, 424, 503) if model.card.lookups or settings.lookup_specs \
        else (400, 413, 415, 422, 503)
    single = {"type": "object", "required": ["predictions", "model_version"], "properties": {
        "predictions": {"type": "array", "items": {"$ref": REF + "Prediction"}},
        "model_version": {"type": "string"}}}
    batch = {"type": "object", "required": ["predictions", "errors", "unique_rows",
                                            "model_version"], "properties": {
        "predictions": {"type": "array", "items": {"anyOf": [
            {"$ref": REF + "Prediction"},
            {"type": "object", "required": ["error"],
             "properties": {"error": {"$ref": REF + "ItemError"}}}]}},
        "errors": {"type": "integer", "minimum": 0},
        "unique_rows": {"type": "integer", "minimum": 0}, "model_version": {"type": "string"}}}
    predict = {"post": {
        "operationId": "predict", "summary": "Score instances, all or nothing",
        "parameters": [FORMAT],
        "requestBody": body(settings.max_instances, False),
        "responses": {"200": answer("one prediction per instance (format=rows), or one "
                                    "array per field (format=columns)",
                                    {"anyOf": [single, {"$ref": REF + "Columns"}]}),
                      **errors(*failures)}}}
    return {"components": {"Instance": instance_schema(plan, model.card.allow_nan),
                           "Prediction": pred, "Columns": COLUMNS},
            "/predict": predict,
            "/": {"post": {**predict["post"], "operationId": "predictAtRoot",
                           "summary": "The function's own URL: the same as POST /predict"}},
            "/batch-predict": {"post": {
                "operationId": "batchPredict",
                "summary": "Score instances; a bad one fails alone, as an error item",
                "parameters": [FORMAT],
                "requestBody": body(settings.max_batch_instances, True),
                "responses": {"200": answer("one item per instance, in order (format=rows), "
                                            "or one array per field (format=columns)",
                                            {"anyOf": [batch, {"$ref": REF + "Columns"}]}),
                              **errors(*(s for s in failures if s != 424))}}}}


def _event_bodies() -> tuple[Schema, Schema]:
    """(JSON body, structured CloudEvent) of POST /events (imported only when mounted)."""
    from functions.events.envelopes import PUBSUB_PUBLISHED, STORAGE_FINALIZED

    ID = {"type": "string", "minLength": 1}  # noqa: N806 - a constant of this document

    cloud_event: Schema = {
        "type": "object", "required": ["specversion", "id", "source", "type"],
        "description": "a structured-mode CloudEvent (binary mode: ce-* headers, any body)",
        "properties": {"specversion": {"const": "1.0"}, "id": {"type": "string"},
                       "source": {"type": "string"},
                       "type": {"enum": [STORAGE_FINALIZED, PUBSUB_PUBLISHED],
                                "description": "the types this function handles; any other is "
                                               "refused (422)"}}}
    event_body: Schema = {
        "description": "a raw Pub/Sub push body or a legacy background event, as the platform "
                       "sends it. A body the CloudEvents SDK and functions-framework's "
                       "converter cannot read as an event is refused with the code "
                       "not_an_event (400): they, not a schema, define the envelopes",
        "anyOf": [
            {"type": "object", "required": ["message", "subscription"],
             "not": {"required": ["context"]},
             "properties": {"subscription": {"type": "string"}, "message": {
                 "type": "object", "anyOf": [
                     {"required": ["messageId"], "properties": {"messageId": ID}},
                     {"required": ["message_id"], "not": {"required": ["messageId"]},
                      "properties": {"message_id": ID}}],
                 "description": "data (base64) and attributes as Pub/Sub sends them; a "
                                "message that cannot be scored is acknowledged and kept as "
                                "poison (200), never refused",
                 }}},
            {"type": "object", "required": ["context", "data"],
             "properties": {"context": {"type": "object"}, "data": {"type": "object"}}}]}
    return event_body, cloud_event


def service_paths(settings: Settings) -> dict[str, Schema]:
    """Health, metadata, metrics, this document, /docs, and /events when mounted."""
    def get(op: str, summary: str, responses: Schema) -> Schema:
        return {"get": {"operationId": op, "summary": summary, "responses": responses}}
    ready = {"type": "object", "required": ["ready", "reason"], "properties": {
        "ready": {"type": "boolean"}, "reason": {"type": "string"}}}
    paths: dict[str, Schema] = {
        "/healthz": get("healthz", "Liveness", {"200": answer("alive", {
            "type": "object", "required": ["status"], "properties": {"status": {
                "type": "string"}}})}),
        "/readyz": get("readyz", "Readiness: 503 while loading, after a failed load and "
                       "from SIGTERM on", {"200": answer("ready", ready),
                                           "503": answer("not ready (reason given)", ready)}),
        "/model": get("model", "What is served and how to call it", {
            "200": answer("the card, the graph's inputs and outputs, the instance format",
                          {"type": "object", "required": ["name", "version", "instances"]}),
            **errors(503)}),
        "/metrics": get("metrics", "Prometheus text", {"200": {
            "description": "counters and summaries",
            "content": {"text/plain": {"schema": {"type": "string"}}}}}),
        "/openapi.json": get("openapi", "This document", {
            "200": answer("OpenAPI 3.1", {"type": "object"}), **errors(503)}),
        "/docs": get("docs", "This document as a page (no script from elsewhere)", {
            "200": {"description": "HTML", "content": {"text/html": {
                "schema": {"type": "string"}}}}}),
    }
    if settings.event_routes:
        event_body, cloud_event = _event_bodies()
        paths["/events"] = {"post": {
            "operationId": "events", "summary": "A CloudEvent, legacy event or Pub/Sub push",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": event_body},
                "application/cloudevents+json": {"schema": cloud_event}}},
            "responses": {"200": answer("acknowledged, with the outcome", {
                "type": "object", "required": ["outcome"], "properties": {
                    "outcome": {"type": "string"}, "detail": {"type": "string"}}}),
                "422": answer("an event type no handler takes: refused (the platform "
                              "retries, then dead-letters it)", {"type": "object"}),
                "503": answer("redeliver later", {"type": "object"}),
                **errors(400, 413)}}}
    return paths


def build_document(model: OnnxModel, service: PredictionService,
                   settings: Settings) -> Schema:
    """The whole document for ``model``."""
    card = model.card
    predictions = prediction_paths(model, service, settings)
    components = {"Problem": PROBLEM, "Error": ERROR, "ItemError": ITEM_ERROR,
                  **predictions.pop("components")}
    oip, oip_components = oip_paths(model)
    openai, openai_components = openai_paths(model, service.plan(model), settings)
    paths = {**predictions, **service_paths(settings), **oip, **openai}
    if settings.aip_predict_route:  # Vertex AI: the same handler under its path
        paths[settings.aip_predict_route.rstrip("/")] = {"post": {
            **paths["/predict"]["post"], "operationId": "vertexPredict"}}
    if settings.aip_health_route:
        paths[settings.aip_health_route.rstrip("/")] = {"get": {
            **paths["/readyz"]["get"], "operationId": "vertexHealth"}}
    return {"openapi": "3.1.0",
            "info": {"title": f"{card.name} (ONNX model served)", "version": card.version,
                     "description": card.description or f"{card.task} model {card.name}"},
            "paths": paths,
            "components": {"schemas": {**components, **oip_components, **openai_components}}}


class OpenApiDocs:
    """The document per loaded model, built once (at load) and kept as JSON bytes."""

    def __init__(self, holder: ModelHolder, service: PredictionService,
                 settings: Settings) -> None:
        self.holder, self.service, self.settings = holder, service, settings
        self._cache: weakref.WeakKeyDictionary[OnnxModel, bytes] = weakref.WeakKeyDictionary()

    def prepare(self) -> None:
        """Build the current model's document now (an ``on_ready`` callback)."""
        if self.holder.model is not None:
            self.json(self.holder.model)

    def json(self, model: OnnxModel | None = None) -> bytes:
        """The document of ``model`` (default: the served one; 503 while none is)."""
        model = model or self.holder.require()
        doc = self._cache.get(model)
        if doc is None:
            doc = self._cache[model] = orjson.dumps(
                build_document(model, self.service, self.settings))
        return doc
