"""The HTTP routes of the one function: predictions, health, model metadata, metrics.

Every route shares the error contract of ``responses.error_response`` (through the Router).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from functions import metrics
from functions.codecs import vertex
from functions.codecs.predict_bodies import answer_format, batch_body, columns_body, predict_body
from functions.config.settings import Settings
from functions.http.admission import Admission
from functions.http.bodies import read_body, require_json
from functions.http.model_info import describe
from functions.http.responses import json_response
from functions.http.router import Router
from functions.loading.holder import ModelHolder
from functions.service import PredictionService, Scored

OFF_LOOP_TEXT_BYTES = 4 * 1024
"""Text bodies from this size on (a few milliseconds of tokenizing) are decoded in a worker
thread (the tokenizer releases the GIL), so the event loop keeps serving; below it the
thread hop is a large share of the work."""


def prediction_routes(router: Router, holder: ModelHolder, service: PredictionService,
                      settings: Settings, admission: Admission) -> None:
    """Register /predict, /batch-predict, /healthz, /readyz, /model and /metrics; their
    requests charged to ``admission`` (the instance's, shared with every prediction route,
    which /metrics shows)."""

    def scoring(cap: int, strict: bool, body_of: Callable[[Scored], dict[str, Any]]) -> Any:
        async def score(request: Request) -> Response:
            query = request.scope.get("query_string")
            fmt = answer_format(query) if query else "rows"
            declared = require_json(request)
            charge = admission.take(declared, cap, holder.model)  # held until answered
            if charge < 0:
                charge = await admission.wait(-charge, request)
            try:
                body = await read_body(request, settings.max_body_bytes, declared)
                model = holder.model or await holder.get()
                plan = service.plan(model)
                inputs = await asyncio.to_thread(vertex.decode, body, plan, cap) \
                    if plan.kind == "text" and len(body) >= OFF_LOOP_TEXT_BYTES \
                    else vertex.decode(body, plan, cap)
                if charge > admission.small_max:
                    charge = admission.settle(charge, len(body), inputs, model)
                scored = service.predict_now(model, inputs, strict=strict) or \
                    await service.predict(model, inputs, strict=strict)
                response = json_response(columns_body(scored) if fmt == "columns"
                                         else body_of(scored))
            except BaseException:
                admission.leave(charge)
                raise
            return admission.answered(response, charge)
        return score

    predict = scoring(settings.max_instances, True, predict_body)
    batch_predict = scoring(settings.max_batch_instances, False, batch_body)

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
              "HTTP requests being answered now (this one included)"),
             ("admission_held_bytes", admission.held(),
              "memory charged to the requests in flight (REQUESTS_MEMORY_MB)")]),
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
