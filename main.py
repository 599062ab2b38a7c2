"""Entry points the platforms call; nothing else lives here.

    predict             HTTP (functions-framework ASGI path): /predict, /batch-predict, ...
    on_storage_event    CloudEvent google.cloud.storage.object.v1.finalized (Flask path)
    on_pubsub_message   Pub/Sub push (raw body, with or without data) or messagePublished
                        CloudEvent (HTTP function: functions-framework's converter refuses
                        a message without data before any code of ours runs)
    lambda_handler      AWS Lambda: API Gateway v1/v2, Function URL, S3 and SQS events
"""

from __future__ import annotations

import gc
from functools import cache

gc.disable()  # imports allocate only long-lived objects: collecting them now is wasted time
try:
    from functions.loading.early_fetch import fetch_ahead

    fetch_ahead()  # gunicorn's arbiter: a model in object storage downloads meanwhile
    from typing import Any

    import functions_framework
    import functions_framework.aio
    from starlette.requests import Request
    from starlette.responses import Response

    from functions.http.execution_ids import install as install_execution_ids
    from functions.runtime import runtime

    install_execution_ids()  # one draw per request instead of twelve (see its module)

    _rt = runtime()  # starts the model load now, at process start, not at first request
finally:
    gc.freeze()  # what import built stays out of later collections (and shared after fork)
    gc.enable()

# The event and Lambda adapters are built (and imported) on first use by the entry points
# that need them (Runtime.events, Runtime.lambda_adapter): an HTTP-only process does not
# pay their import at cold start.


async def predict(request: Request) -> Response:
    """Every HTTP route of the function (see functions/http/routes.py)."""
    return await _rt.router(request)


functions_framework.aio.http(predict)  # registers ``predict`` as an ASGI HTTP function;
# the pass-through coroutine it returns is not kept (one await less per request)


@functions_framework.cloud_event
def on_storage_event(event) -> None:  # noqa: ANN001 - a cloudevents CloudEvent
    """An object was finalized: roll out a model, score a data file, or ignore it.

    Returning acknowledges the event; raising (transient failures) makes it redelivered.
    """
    _rt.events().cloud_event(event)


@cache
def _push() -> Any:
    from functions.events.routes import push_endpoint  # event deployments only

    return push_endpoint(_rt.events, _rt.settings.max_body_bytes, _rt.admission)


@functions_framework.aio.http
async def on_pubsub_message(request: Request) -> Response:
    """A Pub/Sub message, pushed raw or as a CloudEvent: score what it asks for.

    200 acknowledges (poison included, once kept); 503 makes Pub/Sub redeliver; 422 refuses
    an event type no handler takes (dead-lettered after the subscription's max attempts).
    """
    return await _push()(request)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """AWS Lambda: API Gateway v1/v2 and Function URL requests, S3 and SQS records."""
    return runtime().lambda_adapter()(event, context)
