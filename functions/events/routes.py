"""Events over HTTP: POST /events in the HTTP app, and the Pub/Sub push entry point.

Why /events: on Cloud Run one service can both serve /predict and receive the storage
trigger (Eventarc pushes to ``/events``), so a roll-out swaps the model of the process that
serves. Enabled by EVENT_ROUTES=true; protect it like any push endpoint (IAM / OIDC).
``main.on_pubsub_message`` answers with the same endpoint at every path.

Accepted bodies (functions/events/push.py): binary and structured CloudEvents, raw Pub/Sub
push bodies (with or without ``data``) and legacy background events. Answers: 200 with the
outcome for everything acknowledged (poison included, once kept, so push delivery stops);
503 with Retry-After when the platform should redeliver (a transient failure, poison with
nowhere to keep it); 422 for an event type no handler takes (refused:
the platform retries, then dead-letters it); 400 for a body that is no event at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from functions.codecs.json_text import parse_json
from functions.errors import MethodNotAllowed
from functions.events.dispatch import EventHandlers
from functions.events.failures import Redeliver, Unhandled, is_transient
from functions.events.push import cloud_event_from_http
from functions.http.admission import Admission
from functions.http.bodies import read_body
from functions.http.responses import error_response, json_response
from functions.http.router import Router

Endpoint = Callable[[Request], Awaitable[Response]]
PUSH_BODY_LIMIT = (10 << 20) * 4 // 3 + (64 << 10)
"""The largest push body a Pub/Sub message can make: 10 MiB of data, base64-encoded, plus
its envelope (attributes, ids). Larger bodies are refused with 413 before being read."""
PUSH_BODY_FACTOR = 4
"""Bytes a push holds per body byte while it is handled: the body, the values parsed from
it, the decoded data and the CloudEvent made of it (what the handler then reads, e.g. a
file it scores, it streams: docs/events.md)."""


def events_endpoint(handlers: Callable[[], EventHandlers], max_body_bytes: int,
                    admission: Admission | None = None) -> Endpoint:
    """The HTTP handler for pushed events; ``handlers`` gives the event handlers (built on
    first use). Each push is charged to ``admission`` (the instance's memory for requests
    in flight) from its Content-Length before its body is read, and waits there when it
    does not fit: a burst of large pushes cannot hold more bodies than that memory, and one
    that waits too long is answered 503 with a Retry-After, so the platform delivers it
    again. Errors it does not answer itself (a bug) raise to the caller."""
    limit = min(max_body_bytes, PUSH_BODY_LIMIT)

    async def events(request: Request) -> Response:
        if admission is None:
            return await handle(request)
        charge = admission.take_body(request.headers.get("content-length"), limit,
                                     PUSH_BODY_FACTOR)
        if charge < 0:
            charge = await admission.wait(-charge, request)
        try:
            return await handle(request)
        finally:
            admission.leave(charge)

    async def handle(request: Request) -> Response:
        body = await read_body(request, limit)
        if request.headers.get("content-type", "").split(";")[0].strip().endswith("json"):
            parse_json(body)  # 400 for what the SDK's own json.loads would choke on (depth)
        event = cloud_event_from_http(dict(request.headers), body, request.scope["path"])
        try:  # handlers block (downloads, model builds): keep them off the event loop
            outcome = await asyncio.to_thread(handlers().cloud_event, event)
        except Unhandled as exc:
            return json_response({"outcome": "refused", "detail": str(exc)}, 422)
        except Exception as exc:
            if not (isinstance(exc, Redeliver) or is_transient(exc)):
                raise  # a bug: the router answers 500 and logs it
            return json_response({"outcome": "retry", "detail": str(exc)}, 503,
                                 {"Retry-After": "10"})
        return json_response({"outcome": outcome.action, "detail": outcome.detail,
                              **outcome.facts})

    return events


def push_endpoint(handlers: Callable[[], EventHandlers], max_body_bytes: int,
                  admission: Admission | None = None) -> Endpoint:
    """``events_endpoint`` on its own (``main.on_pubsub_message``, every path), its errors
    mapped to answers by the same mapper as the Router's."""
    endpoint = events_endpoint(handlers, max_body_bytes, admission)

    async def push(request: Request) -> Response:
        try:
            if request.method != "POST":
                raise MethodNotAllowed(f"{request.method}: push events with POST")
            return await endpoint(request)
        except Exception as exc:  # noqa: BLE001 - mapped exactly as the Router maps them
            return error_response(exc)

    return push


def event_routes(router: Router, handlers: Callable[[], EventHandlers], max_body_bytes: int,
                 admission: Admission | None = None) -> None:
    """Register POST /events."""
    router.add("POST", "/events", events_endpoint(handlers, max_body_bytes, admission))
