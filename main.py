"""Entry points the platforms call; nothing else lives here.

    predict             HTTP (functions-framework ASGI path): /predict, /batch-predict, ...
"""

from __future__ import annotations

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from functions.app import instance

_app = instance()  # starts the model load now, at instance start, not at first request


@functions_framework.aio.http
async def predict(request: Request) -> Response:
    """Every HTTP route of the function (see functions/routes.py)."""
    return await _app.router(request)
