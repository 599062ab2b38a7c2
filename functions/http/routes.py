"""The HTTP routes of the one function: predictions, health, model metadata, metrics.

Every route shares the error contract of ``responses.error_response`` (through the Router).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from functions import metrics
from functions.errors import ItemError, Problem, RequestError, ValidationFailed
from functions.http.bodies import may_hold_bools, parse_json, read_body, require_json
from functions.http.model_info import describe
from functions.http.numeric_body import numeric_matrix
from functions.http.responses import json_response
from functions.http.router import Router
from functions.loading.holder import ModelHolder
from functions.rows import columns_to_instances
from functions.service import BatchResult, PredictionService
from functions.settings import Settings

Handler = Callable[[Request], Awaitable[Response]]
MATRIX_BODY_BYTES = 2048
"""Bodies from this size on are tried as one numeric matrix first (numeric_body); below
it orjson's few microseconds win."""


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


def wants_columns(request: Request) -> bool:
    """``?format=columns``: the answer as one array per field (large batches: one orjson
    call for all rows); ``?format=rows`` (the default): one object per instance."""
    query = request.scope.get("query_string", b"")
    if not query:
        return False
    values = parse_qs(query.decode("latin-1")).get("format", ["rows"])
    if values[-1] not in ("rows", "columns"):
        raise RequestError(f"format must be rows or columns, got {values[-1]!r}",
                           [Problem("rows or columns", None, "format")])
    return values[-1] == "columns"


def columns_body(result: BatchResult) -> dict[str, Any]:
    """The ``format=columns`` answer: ``outputs`` (field -> one value per instance, null
    where it failed), ``classes`` (what a classifier's probability columns stand for) and
    each failed instance's error, as in the row format."""
    cols = result.columns
    assert cols is not None  # the service answers columns when asked for them
    body: dict[str, Any] = {"outputs": cols.writable()}
    if cols.classes is not None:
        body["classes"] = cols.classes
    body["errors"] = len(result.failures)
    if result.failures:
        body["failures"] = [result.failures[i].body(i) for i in sorted(result.failures)]
    body["unique_rows"] = result.unique_rows
    body["model_version"] = result.model_version
    return body


def prediction_routes(router: Router, holder: ModelHolder, service: PredictionService,
                      settings: Settings) -> None:
    """Register /predict, /batch-predict, /healthz, /readyz, /model and /metrics."""

    async def scored(body: bytes, doc: Any, cap: int, strict: bool,
                     columns: bool) -> BatchResult:
        """``doc``: the body already parsed (small bodies), or None."""
        width = service.row_width() if len(body) >= MATRIX_BODY_BYTES else None
        matrix = numeric_matrix(body, width) if width else None
        if matrix is not None and len(matrix) <= cap:
            return await service.predict(matrix, strict=strict, columns=columns)
        doc = parse_json(body) if doc is None else doc
        return await service.predict(_instances(doc, cap), strict=strict,
                                     may_hold_bools=may_hold_bools(body), columns=columns)

    async def predict(request: Request) -> Response:
        columns = wants_columns(request)
        body = await read_body(request, settings.max_body_bytes, require_json(request))
        doc = None
        if not columns and len(body) < MATRIX_BODY_BYTES:  # maybe one row: service.predict_one
            doc = parse_json(body)
            one = service.predict_one(doc.get("instances")) \
                if type(doc) is dict and len(doc) == 1 else None
            if one is not None:
                return json_response({"predictions": [one[0]], "model_version": one[1]})
        result = await scored(body, doc, settings.max_instances, True, columns)
        if columns:
            return json_response(columns_body(result))
        return json_response({"predictions": result.items,
                              "model_version": result.model_version})

    async def batch_predict(request: Request) -> Response:
        columns = wants_columns(request)
        body = await read_body(request, settings.max_body_bytes, require_json(request))
        result = await scored(body, None, settings.max_batch_instances, False, columns)
        if columns:
            return json_response(columns_body(result))
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
        return json_response({"ready": ready, "reason": reason}, 200 if ready else 503,
                             None if router.drain.draining else holder.retry_after())

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
    router.add("POST", "/", predict)  # the function's own URL predicts (Cloud Functions)
    router.add("POST", "/batch-predict", batch_predict)
    router.add("GET", "/healthz", healthz)
    router.add("GET", "/readyz", readyz)
    router.add("GET", "/model", model_info)
    router.add("GET", "/metrics", metrics_text)
    if settings.aip_predict_route:  # Vertex AI custom container: its paths, same handlers
        router.add("POST", settings.aip_predict_route.rstrip("/"), predict)
    if settings.aip_health_route:
        router.add("GET", settings.aip_health_route.rstrip("/"), readyz)
