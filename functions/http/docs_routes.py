"""GET /openapi.json and GET /docs: the served model's API description."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from functions.http.docs_page import PAGE
from functions.http.openapi import OpenApiDocs
from functions.http.router import Router


def docs_routes(router: Router, docs: OpenApiDocs) -> None:
    """Register GET /openapi.json (503 while no model is loaded) and GET /docs."""

    async def openapi_json(request: Request) -> Response:
        return Response(docs.json(), media_type="application/json")

    async def docs_page(request: Request) -> Response:
        return Response(PAGE, media_type="text/html; charset=utf-8")

    router.add("GET", "/openapi.json", openapi_json)
    router.add("GET", "/docs", docs_page)
