"""The HTTP routes of the one function: predictions, health, model metadata, metrics.

Adapters for other protocols (Open Inference Protocol under /v2) register a prefix with
the Router; every route shares the error contract of ``http_io.error_response``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from functions import metrics
from functions.errors import ItemError, MethodNotAllowed, NotFound, Problem, ValidationFailed
from functions.http_io import error_response, json_response, parse_json, read_body, require_json
from functions.loader import ModelHolder
from functions.lookups import effective_specs, lookup_config
from functions.service import PredictionService
from functions.settings import Settings

Handler = Callable[[Request], Awaitable[Response]]


class Router:
    """Exact (method, path) routes plus prefix handlers; errors mapped in one place."""

    def __init__(self) -> None:
        self.exact: dict[str, dict[str, Handler]] = {}
        self.prefixes: list[tuple[str, Handler]] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        self.exact.setdefault(path, {})[method] = handler

    def add_prefix(self, prefix: str, handler: Handler) -> None:
        self.prefixes.append((prefix, handler))

    def _label(self, path: str) -> str:
        """The metrics label for ``path``: its route, never the raw URL (bounded labels)."""
        if path in self.exact:
            return path
        for prefix, _ in self.prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return prefix
        return "unmatched"

    async def __call__(self, request: Request) -> Response:
        path = request.url.path.rstrip("/") or "/"
        started = time.perf_counter()
        try:
            response = await self._dispatch(request, path)
        except Exception as exc:  # noqa: BLE001 - the one place errors become responses
            response = error_response(exc)
        label = self._label(path)
        metrics.inc(f'http_requests_total{{path="{label}",status="{response.status_code}"}}',
                    1, "HTTP requests by route and status")
        metrics.observe(f'http_request{{path="{label}"}}', time.perf_counter() - started,
                        "time spent answering HTTP requests, by route")
        return response

    async def _dispatch(self, request: Request, path: str) -> Response:
        methods = self.exact.get(path)
        if methods is not None:
            handler = methods.get(request.method)
            if handler is None:
                raise MethodNotAllowed(f"{request.method} {path} is not allowed; "
                                       f"use {', '.join(sorted(methods))}")
            return await handler(request)
        for prefix, handler in self.prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return await handler(request)
        raise NotFound(f"no route {request.method} {path}; see GET /model and the README")




def _instances(body: Any, cap: int) -> list[Any]:
    if not isinstance(body, dict) or "instances" not in body:
        raise ValidationFailed('body must be an object with an "instances" list',
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


def _item_json(item: dict[str, Any] | ItemError, index: int) -> dict[str, Any]:
    if isinstance(item, ItemError):
        details = [p.as_dict() for p in item.problems]
        return {"error": {"status": item.status, "code": item.code, "index": index,
                          "message": item.problems[0].message if item.problems else item.code,
                          "details": details}}
    return item


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
            _item_json(item, i) for i, item in enumerate(result.items)]
        return json_response({"predictions": items, "errors": len(result.failures),
                              "unique_rows": result.unique_rows,
                              "model_version": result.model_version})

    async def healthz(request: Request) -> Response:
        return json_response({"status": "alive"})

    async def readyz(request: Request) -> Response:
        ready, reason = holder.readiness()
        return json_response({"ready": ready, "reason": reason}, 200 if ready else 503)

    async def model_info(request: Request) -> Response:
        return json_response(describe(holder))

    async def metrics_text(request: Request) -> Response:
        ready = 1.0 if holder.model is not None else 0.0
        return PlainTextResponse(metrics.render(
            [("model_ready", ready, "1 once the model is loaded and warmed")]),
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


def describe(holder: ModelHolder) -> dict[str, Any]:
    """/model: what is served and how to call it (503 while nothing is loaded)."""
    model = holder.require()
    card = model.card
    return {
        "name": card.name, "version": card.version, "sha256": card.sha256, "task": card.task,
        "inputs": [s.model_dump() for s in model.inputs],
        "outputs": [s.model_dump() for s in model.outputs],
        "feature_names": card.feature_names, "labels": card.labels,
        "allow_nan": card.allow_nan, "providers": model.providers,
        "graph_optimization": "done offline (skipped at load)"
        if model.graph_optimised_offline else "at load",
        "load_seconds": holder.load_seconds,
        "lookups": [lk.model_dump() for lk in effective_specs(card, holder.settings)],
        "lookup_settings": lookup_config(holder.settings),
        "card": card.model_dump(exclude={"inputs", "outputs"}, exclude_none=True),
    }
