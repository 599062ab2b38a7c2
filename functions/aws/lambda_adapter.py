"""AWS Lambda: one handler for HTTP (API Gateway v1/v2, Function URLs), S3 and SQS events.

- HTTP events go through Mangum to the same Router that serves functions-framework, so the
  routes, the error contract and the metrics are identical on both clouds.
- S3 ``ObjectCreated`` records go down the storage path (roll-out, file scoring). Any
  failure that deserves a retry is raised after the other records were handled (Lambda
  retries the asynchronous invocation; handled records are skipped or overwritten).
- SQS records are messages: an S3 notification delivered through a queue goes down the
  storage path, anything else is a message payload (as on Pub/Sub). Failures that deserve a
  retry are reported per record in ``batchItemFailures`` (the event source mapping needs
  ``ReportBatchItemFailures``); poison records are logged and acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request

from functions.errors import PayloadTooLarge
from functions.events.dispatch import EventHandlers, ack_or_redeliver
from functions.events.envelopes import is_s3_notification, s3_objects, sqs_message
from functions.events.outcome import Outcome
from functions.http.responses import error_response
from functions.http.router import Router

LAMBDA_SYNC_PAYLOAD = 6 * 1024 * 1024
"""Lambda's synchronous invocation payload limit (API Gateway's own 10 MB is never reached)."""


def _is_http(event: dict[str, Any]) -> bool:
    return "requestContext" in event and ("httpMethod" in event or "version" in event)


class LambdaAdapter:
    """``adapter(event, context)``: the Lambda handler over one Router and the event
    handlers (built on first use: an HTTP-only function never builds them)."""

    def __init__(self, router: Router, handlers: Callable[[], EventHandlers]) -> None:
        self.router = router
        self.handlers = handlers
        self._mangum: Any = None

    async def _asgi(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        """The whole HTTP surface as a bare ASGI app: every path goes to the Router."""
        response = await self.router(Request(scope, receive))
        await response(scope, receive, send)

    def _http(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        body = event.get("body") or ""
        size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body)
        if size > LAMBDA_SYNC_PAYLOAD:  # 413 in the error contract, before decoding it
            answer = error_response(PayloadTooLarge(
                f"body of about {size} bytes is over Lambda's {LAMBDA_SYNC_PAYLOAD}-byte "
                "payload limit"))
            return {"statusCode": answer.status_code, "isBase64Encoded": False,
                    "headers": {"content-type": "application/json"},
                    "body": bytes(answer.body).decode()}
        if self._mangum is None:
            from mangum import Mangum  # only Lambda deployments install it (requirements-aws)

            self._mangum = Mangum(self._asgi, lifespan="off")
        return self._mangum(event, context)

    def _objects_outcome(self, body: dict[str, Any]) -> Outcome:
        uploads = self.handlers().uploads
        outcomes = [uploads.handle(ref) for ref in s3_objects(body)]
        if not outcomes:
            return Outcome("ignored", "no ObjectCreated records")
        return Outcome(",".join(sorted({o.action for o in outcomes})),
                       "; ".join(o.detail for o in outcomes))

    def _s3(self, event: dict[str, Any]) -> dict[str, Any]:
        failed: list[BaseException] = []
        for record in event["Records"]:
            key = record.get("s3", {}).get("object", {}).get("key", "?")
            try:
                ack_or_redeliver(lambda r=record: self._objects_outcome({"Records": [r]}),
                                 "s3", key)
            except Exception as exc:  # keep going: one object's failure must not stall others
                failed.append(exc)
        if failed:
            raise failed[0]
        return {"records": len(event["Records"])}

    def _sqs_work(self, record: dict[str, Any]) -> Outcome:
        try:
            body = orjson.loads(record.get("body") or "")
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and body.get("Event") == "s3:TestEvent":
            return Outcome("ignored", "S3 test event (sent when a notification is configured)")
        if isinstance(body, dict) and is_s3_notification(body):
            return self._objects_outcome(body)
        return self.handlers().messages.handle(sqs_message(record))

    def _sqs(self, event: dict[str, Any]) -> dict[str, Any]:
        failures = []
        for record in event["Records"]:
            try:
                ack_or_redeliver(lambda r=record: self._sqs_work(r), "sqs",
                                 str(record.get("messageId")))
            except Exception:  # already logged: report it for redelivery
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The Lambda entry point (``main.lambda_handler``)."""
        if _is_http(event):
            return self._http(event, context)
        records = event.get("Records") or []
        sources = {r.get("eventSource") for r in records if isinstance(r, dict)}
        if records and sources == {"aws:s3"}:
            return self._s3(event)
        if records and sources == {"aws:sqs"}:
            return self._sqs(event)
        raise ValueError(f"unsupported Lambda event (keys {sorted(event)[:8]}, "
                         f"sources {sources})")
