"""POST /events in the HTTP app: the serving process handles events itself.

Why: on Cloud Run one service can both serve /predict and receive the storage trigger
(Eventarc pushes to ``/events``), so a roll-out swaps the model of the process that serves.
Enabled by EVENT_ROUTES=true; protect it like any push endpoint (IAM / OIDC on Cloud Run).

Accepted bodies are exactly those functions-framework's ``@cloud_event`` accepts: binary
and structured CloudEvents, legacy background events and raw Pub/Sub push bodies (the last
two through functions-framework's own converter). Answers: 200 with the outcome for
everything acknowledged (poison included, so push delivery stops), 503 when the platform
should redeliver, 400 for a body that is no event at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from cloudevents.exceptions import GenericException
from cloudevents.http import from_http
from functions_framework import event_conversion
from functions_framework.exceptions import EventConversionException
from starlette.requests import Request
from starlette.responses import Response

from functions.errors import RequestError
from functions.events.dispatch import EventHandlers
from functions.events.failures import is_transient
from functions.http.bodies import parse_json, read_body
from functions.http.responses import json_response
from functions.http.router import Router

PUSH_BODY_LIMIT = (10 << 20) * 4 // 3 + (64 << 10)
"""The largest push body a Pub/Sub message can make: 10 MiB of data, base64-encoded, plus
its envelope (attributes, ids). Larger bodies are refused with 413 before being read."""


class _PushRequest:
    """The two things functions-framework's legacy converter reads from a Flask request."""

    def __init__(self, body: bytes, path: str) -> None:
        self._body, self.path = body, path

    def get_json(self) -> Any:
        try:
            return orjson.loads(self._body)
        except orjson.JSONDecodeError:
            return None


def cloud_event_from_http(headers: dict[str, str], body: bytes, path: str) -> Any:
    """A CloudEvent from an HTTP request (RequestError when it is not any kind of event)."""
    try:
        return from_http(headers, body)
    except (GenericException, ValueError) as ce_error:  # ValueError: not UTF-8, not JSON
        try:
            return event_conversion.background_event_to_cloud_event(_PushRequest(body, path))
        except (EventConversionException, AttributeError, KeyError, TypeError) as exc:
            raise RequestError(f"not a CloudEvent ({ce_error}) "
                               f"nor a legacy event ({exc})") from None


def event_routes(router: Router, handlers: Callable[[], EventHandlers],
                 max_body_bytes: int) -> None:
    """Register POST /events; ``handlers`` gives the event handlers (built on first use)."""

    async def events(request: Request) -> Response:
        body = await read_body(request, min(max_body_bytes, PUSH_BODY_LIMIT))
        if request.headers.get("content-type", "").split(";")[0].strip().endswith("json"):
            parse_json(body)  # 400 for what the SDK's own json.loads would choke on (depth)
        event = cloud_event_from_http(dict(request.headers), body, request.url.path)
        try:  # handlers block (downloads, model builds): keep them off the event loop
            outcome = await asyncio.to_thread(handlers().cloud_event, event)
        except Exception as exc:
            if not is_transient(exc):
                raise  # a bug: the router answers 500 and logs it
            return json_response({"outcome": "retry", "detail": str(exc)}, 503,
                                 {"Retry-After": "10"})
        return json_response({"outcome": outcome.action, "detail": outcome.detail,
                              **outcome.facts})

    router.add("POST", "/events", events)
