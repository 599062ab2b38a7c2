"""Entry points the platforms call; nothing else lives here.

    predict             HTTP (functions-framework ASGI path): /predict, /batch-predict, ...
    on_storage_event    CloudEvent google.cloud.storage.object.v1.finalized (Flask path)
    on_pubsub_message   CloudEvent google.cloud.pubsub.topic.v1.messagePublished (Flask path)
    lambda_handler      AWS Lambda: API Gateway v1/v2, Function URL, S3 and SQS events
"""

from __future__ import annotations

import gc

gc.disable()  # imports allocate only long-lived objects: collecting them now is wasted time
try:
    from typing import Any

    import functions_framework
    import functions_framework.aio
    from starlette.requests import Request
    from starlette.responses import Response

    from functions.runtime import runtime

    _rt = runtime()  # starts the model load now, at process start, not at first request
finally:
    gc.freeze()  # what import built stays out of later collections (and shared after fork)
    gc.enable()

# The event and Lambda adapters are built (and imported) on first use by the entry points
# that need them (Runtime.events, Runtime.lambda_adapter): an HTTP-only process does not
# pay their import at cold start.


@functions_framework.aio.http
async def predict(request: Request) -> Response:
    """Every HTTP route of the function (see functions/http/routes.py)."""
    return await _rt.router(request)


@functions_framework.cloud_event
def on_storage_event(event) -> None:  # noqa: ANN001 - a cloudevents CloudEvent
    """An object was finalized: roll out a model, score a data file, or ignore it.

    Returning acknowledges the event; raising (transient failures) makes it redelivered.
    """
    _rt.events().cloud_event(event)


@functions_framework.cloud_event
def on_pubsub_message(event) -> None:  # noqa: ANN001 - a cloudevents CloudEvent
    """A Pub/Sub message (CloudEvent or raw push body): score what it asks for."""
    _rt.events().cloud_event(event)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """AWS Lambda: API Gateway v1/v2 and Function URL requests, S3 and SQS records."""
    return runtime().lambda_adapter()(event, context)
