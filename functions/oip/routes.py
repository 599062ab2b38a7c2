"""The Open Inference Protocol (KServe v2 / Triton) REST routes under /v2.

    GET  /v2                                          server metadata and extensions
    GET  /v2/health/live                              {"live": true}
    GET  /v2/health/ready                             {"ready": true}, or 503 while not ready
    GET  /v2/models/{name}[/versions/{v}]             model metadata (-1 for dynamic dims)
    GET  /v2/models/{name}[/versions/{v}]/ready       {"name": name, "ready": true}, or 503
    GET  /v2/models/{name}[/versions/{v}]/config      Triton-style model config (for tools)
    POST /v2/models/{name}[/versions/{v}]/infer       inference, JSON and binary tensors

Errors use the protocol's shape ``{"error": "message"}`` rather than the package's: 400 for
bad input (the core's 422 included), 404 for an unknown model, version or route, 503 when
the model is not ready (the message says why), and 503 with a Retry-After when the
instance's memory for requests in flight stayed full (REQUESTS_MEMORY_MB,
functions.http.admission; Triton too answers 503 when its queue is full). The health
bodies are KServe's: its SDK reads ``live`` and ``ready`` from them. The model's name and
version are the card's.

Inference is charged to REQUESTS_MEMORY_MB as /predict is. The protocol caps no item
count, so the body alone bounds a request's items; a compressed body is charged as one of
unknown length until it is inflated and decoded.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from functions.codecs.plans import Inputs
from functions.codecs.v2 import (
    HEADER_LENGTH,
    decode_request,
    encode_response,
    in_request_order,
    inflate,
)
from functions.codecs.v2_tensors import v2_datatype
from functions.config.settings import Settings
from functions.errors import MethodNotAllowed, NotFound, ServingError
from functions.http.admission import Admission
from functions.http.bodies import header_bytes, read_body
from functions.http.responses import json_response
from functions.loading.holder import ModelHolder
from functions.model.onnx_model import OnnxModel
from functions.service import PredictionService

log = logging.getLogger(__name__)
SERVER = {"name": "onnx-serverless", "version": "1", "extensions": ["binary_tensor_data"]}
PLATFORM = "onnxruntime_onnx"


def error_json(exc: BaseException) -> Response:
    """The protocol's error body; anything not a ServingError is a bug (logged, 500)."""
    if not isinstance(exc, ServingError):
        log.exception("unhandled error on /v2", exc_info=exc)
        return json_response({"error": "internal error (logged)"}, 500)
    status = 400 if exc.status == 422 else exc.status  # the protocol has no 422
    return json_response({"error": exc.message}, status, exc.headers)


def _tensor_meta(spec: Any) -> dict[str, Any]:
    return {"name": spec.name, "datatype": v2_datatype(spec.dtype),
            "shape": [d if isinstance(d, int) else -1 for d in spec.shape]}


def model_metadata(model: OnnxModel) -> dict[str, Any]:
    """$metadata_model_response for the served model."""
    return {"name": model.card.name, "versions": [model.card.version], "platform": PLATFORM,
            "inputs": [_tensor_meta(s) for s in model.inputs],
            "outputs": [_tensor_meta(s) for s in model.outputs]}


def model_config(model: OnnxModel) -> dict[str, Any]:
    """A minimal Triton model configuration (tools such as perf_analyzer read it)."""
    def dims(spec: Any) -> dict[str, Any]:
        meta = _tensor_meta(spec)
        kind = "STRING" if meta["datatype"] == "BYTES" else meta["datatype"]
        return {"name": meta["name"], "data_type": f"TYPE_{kind}", "dims": meta["shape"]}
    return {"name": model.card.name, "platform": PLATFORM, "max_batch_size": 0,
            "input": [dims(s) for s in model.inputs], "output": [dims(s) for s in model.outputs]}


def _route(path: str) -> tuple[str, str | None, str | None]:
    """(action, model name, version) for a /v2 path; NotFound for anything else."""
    parts = [p for p in path.split("/") if p][1:]  # drop "v2"
    if not parts:
        return "server", None, None
    if parts in (["health", "live"], ["health", "ready"]):
        return parts[1], None, None
    if parts[0] == "models" and len(parts) >= 2:
        name, rest, version = parts[1], parts[2:], None
        if rest[:1] == ["versions"] and len(rest) >= 2:
            version, rest = rest[1], rest[2:]
        if not rest:
            return "metadata", name, version
        if len(rest) == 1 and rest[0] in ("ready", "infer", "config"):
            return rest[0], name, version
    raise NotFound(f"no Open Inference Protocol route {path}")


def oip_routes(router: Any, holder: ModelHolder, service: PredictionService,
               settings: Settings, admission: Admission) -> None:
    """Register the /v2 prefix on ``router``; inference charged to ``admission`` (the
    instance's, shared with every prediction route)."""

    def served(name: str | None, version: str | None, model: OnnxModel) -> OnnxModel:
        card = model.card
        if name != card.name:
            raise NotFound(f"unknown model '{name}'; this function serves '{card.name}'")
        if version is not None and version != card.version:
            raise NotFound(f"model '{name}' has no version '{version}'; "
                           f"it has ['{card.version}']")
        return model

    async def infer(request: Request, name: str | None, version: str | None) -> Response:
        model = served(name, version, await holder.get())
        encoding = request.headers.get("content-encoding")
        declared = header_bytes(request, b"content-length") \
            if encoding is None or encoding.strip().lower() == "identity" else None
        # no item cap: at most an item per body byte (binary tensors); compressed: declared
        # as unknown, so charged as the largest body until settled on its inflated size
        charge = admission.take(declared, settings.max_body_bytes)
        if charge < 0:
            charge = await admission.wait(-charge, request)
        try:
            body = inflate(await read_body(request, settings.max_body_bytes, declared),
                           encoding, settings.max_body_bytes)
            decoded = decode_request(body, request.headers.get(HEADER_LENGTH), model)
            inputs = Inputs(decoded.feeds, {}, decoded.rows)
            if charge > admission.small_max:
                charge = admission.settle(charge, len(body), inputs, model)
            scored = await service.predict(model, inputs, strict=True)
            payload, headers = encode_response(model, decoded, in_request_order(scored))
            media = "application/octet-stream" if headers else "application/json"
            response = Response(payload, 200, headers=headers, media_type=media)
        except BaseException:
            admission.leave(charge)
            raise
        return admission.answered(response, charge)

    async def dispatch(request: Request) -> Response:
        action, name, version = _route(request.scope["path"])  # as sent, decoded: not
        # request.url, whose parse drops tabs and newlines (a version "%09" would vanish)
        wanted = "POST" if action == "infer" else "GET"
        if request.method != wanted:
            raise MethodNotAllowed(f"{request.method} is not allowed here; use {wanted}",
                                   headers={"Allow": wanted})
        if action == "infer":
            return await infer(request, name, version)
        if action == "server":
            return json_response(SERVER)
        if action == "live":
            return json_response({"live": True})
        model = holder.require()  # 503 with the reason while loading or after a failed load
        if name is not None:
            model = served(name, version, model)
        if action == "ready":
            return json_response({"name": model.card.name, "ready": True} if name is not None
                                 else {"ready": True})
        return json_response(model_config(model) if action == "config" else model_metadata(model))

    async def handler(request: Request) -> Response:
        try:
            return await dispatch(request)
        except Exception as exc:  # noqa: BLE001 - v2 renders its own error shape
            return error_json(exc)

    router.add_prefix("/v2", handler)
