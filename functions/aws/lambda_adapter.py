"""AWS Lambda: one handler for HTTP (API Gateway v1/v2, Function URLs) and event sources.

- HTTP events go through Mangum to the same Router that serves functions-framework, so the
  routes, the error contract and the metrics are identical on both clouds.
- S3 records, EventBridge S3 events and SNS records arrive by asynchronous invocation:
  each record is handled; poison is kept under the errors location and acknowledged; a
  failure that deserves a retry is raised after the other records were handled (Lambda
  retries the invocation, then sends it to the function's on-failure destination; handled
  records are skipped or overwritten on the retry).
- SQS records (``ReportBatchItemFailures`` on the event source mapping): a failure that
  deserves a retry is reported in ``batchItemFailures``; poison is kept and acknowledged,
  or reported too with SQS_POISON_TO_DLQ (the queue's redrive policy dead-letters it). On
  a FIFO queue the batch stops at the first failure, which is reported with every later
  record, so no record overtakes one of its group.
- Message bodies are unwrapped (functions/aws/records.py): an S3 notification or an
  EventBridge S3 event inside SQS or SNS (raw or not) goes down the storage path, anything
  else is a message payload, as on Pub/Sub.
- Anything else is refused: logged at ERROR and raised, for Lambda to dead-letter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from functions import telemetry
from functions.aws.records import (
    Unwrapped,
    eventbridge_objects,
    is_eventbridge_s3,
    object_delivery,
    s3_objects,
    sns_delivery,
    sqs_attributes,
    sqs_delivery,
    unwrap,
)
from functions.errors import PayloadTooLarge
from functions.events.dispatch import EventHandlers, ack_or_redeliver
from functions.events.failures import Poison, Unhandled
from functions.events.outcome import Outcome, log
from functions.events.poison import Delivery
from functions.http.responses import error_response
from functions.http.router import Router
from functions.loading.object_store import ObjectRef
from functions.telemetry.context import continued, lambda_header

Work = tuple[Delivery, Callable[[], Outcome]]


class PoisonReported(RuntimeError):
    """SQS_POISON_TO_DLQ: poison handed back for the queue's redrive policy."""


def _report(exc: Poison) -> str:
    raise PoisonReported(f"reported for the queue's redrive policy: {exc}")

LAMBDA_SYNC_PAYLOAD = 6 * 1024 * 1024
"""Lambda's synchronous invocation payload limit (API Gateway's own 10 MB is never reached)."""


def _is_http(event: dict[str, Any]) -> bool:
    return "requestContext" in event and ("httpMethod" in event or "version" in event)


def _source(record: Any) -> Any:
    return record.get("eventSource") or record.get("EventSource") if isinstance(record, dict) \
        else None


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

    def _objects(self, refs: list[ObjectRef]) -> Outcome:
        uploads = self.handlers().uploads
        outcomes = [uploads.handle(ref) for ref in refs]
        if not outcomes:
            return Outcome("ignored", "no object created")
        return Outcome(",".join(sorted({o.action for o in outcomes})),
                       "; ".join(o.detail for o in outcomes))

    def _unwrapped(self, what: Unwrapped) -> Outcome:
        if what.message is not None:
            return self.handlers().message(what.message)
        if what.objects is not None:
            return self._objects(what.objects)
        return Outcome("ignored", what.ignored)

    def _s3(self, record: dict[str, Any]) -> Work:
        s3 = record.get("s3") or {}
        obj, bucket = s3.get("object") or {}, (s3.get("bucket") or {}).get("name")
        ident = f"{bucket}/{obj.get('key')}/{obj.get('versionId') or obj.get('eTag')}"
        return (object_delivery("s3", ident, record, bucket, obj.get("key")),
                lambda: self._objects(s3_objects({"Records": [record]})))

    def _eventbridge(self, event: dict[str, Any]) -> Work:
        detail = event.get("detail") or {}
        bucket = (detail.get("bucket") or {}).get("name")
        return (object_delivery("eventbridge", str(event.get("id")), event, bucket,
                                (detail.get("object") or {}).get("key")),
                lambda: self._objects(eventbridge_objects(event)))

    def _sns(self, record: dict[str, Any]) -> Work:
        delivery = sns_delivery(record)
        attrs = {k: v for k, v in delivery.attributes.items() if k != "TopicArn"}
        return delivery, lambda: self._unwrapped(unwrap(delivery.payload, delivery.id, attrs))

    def _each(self, items: list[Any], work_of: Callable[[Any], Work]) -> dict[str, Any]:
        """Asynchronous invocations: every item handled, then the first retryable failure
        raised (poison was kept and acknowledged)."""
        handlers, failed = self.handlers(), []
        for i, item in enumerate(items):
            delivery, work = work_of(item)
            try:
                with continued(None, item=i):  # log lines name the record's index
                    handlers.run(delivery, work)
            except Exception as exc:  # keep going: one item's failure must not stall others
                failed.append(exc)
        if failed:
            raise failed[0]
        return {"records": len(items)}

    def _sqs(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        handlers = self.handlers()
        keep = _report if handlers.settings.sqs_poison_to_dlq else None
        fifo = any(str(r.get("eventSourceARN", "")).endswith(".fifo") for r in records)
        failures: list[str] = []
        for i, record in enumerate(records):
            delivery, attrs = sqs_delivery(record), sqs_attributes(record)
            try:
                with continued(None, item=i):  # log lines name the record's index
                    handlers.run(delivery, lambda d=delivery, a=attrs: self._unwrapped(
                        unwrap(d.payload, d.id, a)), keep)
            except Exception:  # already logged: report it for redelivery
                failures.append(str(record["messageId"]))
                if fifo:  # later records must not overtake this one
                    failures += [str(r["messageId"]) for r in records[i + 1:]]
                    log.warning("sqs FIFO batch stopped at record %d of %d: the rest is handed "
                                "back unprocessed, in order", i + 1, len(records))
                    break
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}

    def _refuse(self, event: dict[str, Any], sources: set[Any]) -> dict[str, Any]:
        def refuse() -> Outcome:
            raise Unhandled(f"unsupported Lambda event (keys {sorted(event)[:8]}, sources "
                            f"{sorted(map(str, sources))}): this function takes API Gateway, "
                            "Function URL, S3, SNS, SQS and EventBridge S3 events")

        ack_or_redeliver(refuse, "lambda", str(event.get("id") or "event"))
        raise AssertionError("unreachable")  # pragma: no cover - refuse() always raises

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The Lambda entry point (``main.lambda_handler``); what it logs carries the
        invocation's X-Ray trace (``_X_AMZN_TRACE_ID``), and its spans are exported before
        it returns (Lambda freezes the process then)."""
        try:
            with continued(lambda_header()):
                return self._handle(event, context)
        finally:
            if telemetry.tracer is not None:
                telemetry.tracer.flush()

    def _handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if _is_http(event):
            return self._http(event, context)
        records = event.get("Records") if isinstance(event.get("Records"), list) else []
        sources = {_source(r) for r in records}
        if records and sources == {"aws:sqs"}:
            return self._sqs(records)
        if records and sources == {"aws:s3"}:
            return self._each(records, self._s3)
        if records and sources == {"aws:sns"}:
            return self._each(records, self._sns)
        if is_eventbridge_s3(event):
            return self._each([event], self._eventbridge)
        return self._refuse(event, sources)
