"""The HTTP routes of the one function: predictions, health, model metadata, metrics.

Every route shares the error contract of ``responses.error_response`` (through the Router).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from functions import metrics
from functions.errors import ItemError, Problem, ValidationFailed
from functions.http.bodies import parse_json, read_body, require_json
from functions.http.model_info import describe
from functions.http.responses import json_response
from functions.http.router import Router
from functions.loading.holder import ModelHolder
from functions.rows import columns_to_instances
from functions.service import PredictionService
from functions.settings import Settings

Handler = Callable[[Request], Awaitable[Response]]


def _instances(body: Any, cap: int) -> list[Any]:
    """The body's instances: ``{"instances": [...]}``, or TF Serving's columnar
    ``{"inputs": ...}`` turned into instances."""
    if isinstance(body, dict) and "inputs" in body and "instances" not in body:
        body = {"instances": columns_to_instances(body["inputs"])}
    if not isinstance(body, dict) or "instances" not in body:
        raise ValidationFailed('body must be an object with an "instances" list '
                               '(or "inputs", columnar)',
                               [Problem("required", None, "instances")])
    instances = body["instances"]
    if not isinstance(instances, list):
        raise ValidationFailed('"instances" must be a list',
                               [Problem("must be a list", None, "instances")])
    if not instances:
        raise ValidationFailed('"instances" is empty', [Problem("empty", None, "instances")])
    if len(instances) > cap:
        raise ValidationFailed(f"{len(instances)} instances is over the limit of {cap}",
                               [Problem(f"at most {cap} instances", None, "instances")])
    return instances


def prediction_routes(router: Router, holder: ModelHolder, service: PredictionService,
                      settings: Settings) -> None:
    """Register /predict, /batch-predict, /healthz, /readyz, /model and /metrics."""

    async def rows(request: Request, cap: int) -> tuple[list[Any], bool]:
        require_json(request)
        body = await read_body(request, settings.max_body_bytes)
        may_hold_bools = b"true" in body or b"false" in body
        return _instances(parse_json(body), cap), may_hold_bools

    async def predict(request: Request) -> Response:
        instances, bools = await rows(request, settings.max_instances)
        result = await service.predict(instances, strict=True, may_hold_bools=bools)
        return json_response({"predictions": result.items,
                              "model_version": result.model_version})

    async def batch_predict(request: Request) -> Response:
        instances, bools = await rows(request, settings.max_batch_instances)
        result = await service.predict(instances, strict=False, may_hold_bools=bools)
        items = result.items if not result.failures else [
            {"error": item.body(i)} if isinstance(item, ItemError) else item
            for i, item in enumerate(result.items)]
        return json_response({"predictions": items, "errors": len(result.failures),
                              "unique_rows": result.unique_rows,
                              "model_version": result.model_version})

    async def healthz(request: Request) -> Response:
        return json_response({"status": "alive"})

    async def readyz(request: Request) -> Response:
        ready, reason = (False, "shutting down") if router.drain.draining \
            else holder.readiness()
        return json_response({"ready": ready, "reason": reason}, 200 if ready else 503)

    async def model_info(request: Request) -> Response:
        return json_response(describe(holder, service))

    async def metrics_text(request: Request) -> Response:
        ready = 1.0 if holder.model is not None else 0.0
        return PlainTextResponse(metrics.render(
            [("model_ready", ready, "1 once the model is loaded and warmed"),
             ("http_requests_in_flight", router.drain.in_flight,
              "HTTP requests being answered now (this one included)")]),
            media_type="text/plain; version=0.0.4")

    router.add("POST", "/predict", predict)
    router.add("POST", "/batch-predict", batch_predict)
    router.add("GET", "/healthz", healthz)
    router.add("GET", "/readyz", readyz)
    router.add("GET", "/model", model_info)
    router.add("GET", "/metrics", metrics_text)
    if settings.aip_predict_route:  # Vertex AI custom container: its paths, same handlers
        router.add("POST", settings.aip_predict_route.rstrip("/"), predict)
    if settings.aip_health_route:
        router.add("GET", settings.aip_health_route.rstrip("/"), readyz)
