"""The OpenAI-compatible routes of an embedding model.

    POST /v1/embeddings, /embeddings   embeddings of text (codecs.openai_embeddings)
    GET  /v1/models, /models           the served model and its aliases

They serve a model whose card's task is ``embedding`` and which has a tokenizer; for any
other model they answer 404. Errors are OpenAI's shape
``{"error": {"message", "type", "param", "code"}}`` with OpenAI's statuses: 400 for bad
input (the core's 422 included), 404 for an unknown model, 413 for a body over
MAX_BODY_BYTES, 415 for a body that is not JSON, 503 while the model is not ready or the
instance shuts down, and 503 ``overloaded`` with a Retry-After when the instance's memory
for requests in flight (REQUESTS_MEMORY_MB, functions.http.admission) stayed full for
ADMISSION_WAIT_SECONDS (OpenAI's status for an overloaded server; its SDKs retry a 503
after the Retry-After). Clients authenticate to the platform (Cloud Run's IAM reads the
identity token the SDKs send as the API key); the routes read no key.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from functions.codecs.openai_embeddings import (
    OpenAIModel,
    decode_request,
    encode_response,
    served_for,
)
from functions.codecs.plans import TextPlan
from functions.config.settings import Settings
from functions.errors import NotFound, ServingError
from functions.http.admission import Admission
from functions.http.bodies import read_body, require_json
from functions.http.responses import JSONBytes, json_response
from functions.http.router import Router
from functions.http.routes import OFF_LOOP_TEXT_BYTES
from functions.loading.holder import ModelHolder
from functions.model.onnx_model import OnnxModel
from functions.service import PredictionService

log = logging.getLogger(__name__)
EMBEDDINGS = ("/v1/embeddings", "/embeddings")
MODELS = ("/v1/models", "/models")


def error_json(exc: BaseException) -> Response:
    """OpenAI's error body; anything not a ServingError is a bug (logged, 500)."""
    if not isinstance(exc, ServingError):
        log.exception("unhandled error on an OpenAI route", exc_info=exc)
        return json_response({"error": {"message": "internal error (logged)",
                                         "type": "server_error", "param": None,
                                         "code": "internal"}}, 500)
    message, param = exc.message, exc.details[0].field if exc.details else None
    if exc.status == 422:  # an input the model refused, or whose output is not finite
        message, param = message.replace("instances[", "input[", 1), "input"
    status = 400 if exc.status == 422 else exc.status  # OpenAI has no 422
    kind = "invalid_request_error" if status < 500 else "server_error"
    return json_response({"error": {"message": message, "type": kind, "param": param,
                                    "code": exc.code}}, status, exc.headers)


def _created(iso: str | None) -> int:
    """The card's ``created_at`` as Unix seconds (OpenAI's ``created``); 0 when unknown."""
    try:
        return int(datetime.fromisoformat(iso).timestamp()) if iso else 0
    except ValueError:
        return 0


def openai_routes(router: Router, holder: ModelHolder, service: PredictionService,
                  settings: Settings, admission: Admission) -> None:
    """Register the OpenAI routes on ``router``, their errors in OpenAI's shape; embeddings
    are charged to ``admission`` (the instance's, shared with every prediction route)."""
    served_by: weakref.WeakKeyDictionary[OnnxModel, OpenAIModel] = weakref.WeakKeyDictionary()

    def embedding_model(model: OnnxModel) -> tuple[TextPlan, OpenAIModel]:
        plan = service.plan(model)
        if model.card.task != "embedding" or not isinstance(plan, TextPlan):
            raise NotFound(f"this function serves '{model.card.name}', a {model.card.task} "
                           "model: the OpenAI embeddings routes need an embedding model with "
                           "a tokenizer")
        served = served_by.get(model)
        if served is None:
            served = served_by[model] = served_for(model, settings)
        return plan, served

    async def embeddings(request: Request) -> Response:
        declared = require_json(request)
        model = holder.model or await holder.get()
        plan, served = embedding_model(model)  # 404 for another task, before any charge
        charge = admission.take(declared, served.max_inputs)  # held until answered
        if charge < 0:
            charge = await admission.wait(-charge, request)
        try:
            body = await read_body(request, settings.max_body_bytes, declared)
            req = await asyncio.to_thread(decode_request, body, plan, served) \
                if len(body) >= OFF_LOOP_TEXT_BYTES else decode_request(body, plan, served)
            if charge > admission.small_max:
                charge = admission.settle(charge, len(body), req.inputs, model)
            scored = await service.predict(model, req.inputs, strict=True)
            response = JSONBytes(encode_response(scored, req))
        except BaseException:
            admission.leave(charge)
            raise
        return admission.answered(response, charge)

    async def models(request: Request) -> Response:
        model = holder.require()
        _, served = embedding_model(model)
        created = _created(model.card.created_at)
        return json_response({"object": "list", "data": [
            {"id": name, "object": "model", "created": created, "owned_by": "onnx-serverless"}
            for name in served.names]})

    for path in EMBEDDINGS:
        router.add("POST", path, embeddings)
        router.prefix_errors[path] = error_json
    for path in MODELS:
        router.add("GET", path, models)
        router.prefix_errors[path] = error_json
