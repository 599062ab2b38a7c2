"""The HTTP surface: one Router serves functions-framework, Cloud Run and Lambda alike.

    router.py        Router: exact routes and prefixes, request metrics, errors mapped
    routes.py        /predict, /batch-predict, /healthz, /readyz, /model, /metrics
    model_info.py    the body of GET /model
    bodies.py        request bodies: media type, bounded reads (their meaning: codecs/)
    responses.py     orjson responses and ``error_response``, the one error mapper
    shutdown.py      Drain: SIGTERM -> readiness 503, in-flight requests finish, grace
    admission.py     Admission: memory held by requests in flight, bounded per instance
    openapi.py       the OpenAPI 3.1 document per loaded model (OpenApiDocs), built from
                     the codecs' schemas
    docs_routes.py   GET /openapi.json and GET /docs (docs_page.py: the static page)
    execution_ids.py functions-framework's per-request execution id in one draw
"""

from functions.http.responses import error_response, json_response
from functions.http.router import Router
from functions.http.routes import prediction_routes

__all__ = ["Router", "error_response", "json_response", "prediction_routes"]
