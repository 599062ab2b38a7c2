"""AWS envelopes -> what our handlers act on: objects that landed, or a message.

Formats, as AWS documents them (samples under tests/events/, sources in their README):

- S3 notification records (to Lambda directly, or as the body of an SQS / SNS message):
  ``eventName`` ``ObjectCreated:*``; ``s3.object.key`` is URL-encoded (spaces as ``+``).
- EventBridge S3 events: ``source`` ``aws.s3``, ``detail-type`` ``Object Created``;
  ``detail.object.key`` is *not* encoded; ``etag`` and ``version-id`` in ``detail.object``.
- SNS records: ``EventSource`` ``aws:sns``; ``Sns.Message`` (a string), ``Sns.MessageId``,
  ``Sns.MessageAttributes`` as ``{name: {"Type", "Value"}}``.
- SQS records: ``messageId``, ``body`` (a string), ``messageAttributes`` as
  ``{name: {"stringValue", "dataType"}}``; FIFO queues add ``attributes.MessageGroupId``.
  Without raw delivery an SNS subscription wraps the message in an SNS notification
  (``{"Type": "Notification", "MessageId", "Message", "MessageAttributes", ...}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import orjson

from functions.events.envelopes import Message
from functions.events.failures import Poison
from functions.events.poison import Delivery
from functions.loading.object_store import ObjectRef


@dataclass(frozen=True)
class Unwrapped:
    """What one message body carries: objects, a message to score, or nothing to do."""

    objects: list[ObjectRef] | None = None
    message: Message | None = None
    ignored: str = ""


def _object_ref(bucket: Any, key: Any, etag: Any, version: Any) -> ObjectRef:
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise Poison("S3 event has no bucket name / object key")
    tag = str(etag or "").strip('"') or None
    return ObjectRef("s3", bucket, key, tag or version or None, version or None)


def is_s3_notification(body: Mapping[str, Any]) -> bool:
    """An S3 event notification (direct to Lambda, or inside an SQS / SNS message)."""
    records = body.get("Records")
    return bool(records) and isinstance(records, list) and all(
        isinstance(r, dict) and r.get("eventSource") == "aws:s3" for r in records)


def s3_objects(body: Mapping[str, Any]) -> list[ObjectRef]:
    """The created objects of an S3 notification; other event names are skipped."""
    refs = []
    for record in body.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
            continue
        s3 = record.get("s3") or {}
        obj = s3.get("object") or {}
        key = obj.get("key")
        refs.append(_object_ref((s3.get("bucket") or {}).get("name"),
                                unquote_plus(key) if isinstance(key, str) else key,
                                obj.get("eTag"), obj.get("versionId")))
    return refs


def is_eventbridge_s3(event: Mapping[str, Any]) -> bool:
    return event.get("source") == "aws.s3" and "detail-type" in event and "detail" in event


def eventbridge_objects(event: Mapping[str, Any]) -> list[ObjectRef]:
    """The object of an EventBridge ``Object Created`` event ([] for other detail types)."""
    if event.get("detail-type") != "Object Created":
        return []
    detail = event.get("detail") or {}
    obj = detail.get("object") or {}
    return [_object_ref((detail.get("bucket") or {}).get("name"), obj.get("key"),
                        obj.get("etag"), obj.get("version-id"))]


def unwrap(payload: bytes, msg_id: str, attributes: dict[str, str]) -> Unwrapped:
    """A message body from SQS or SNS, unwrapped down to what it is about."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        return Unwrapped(message=Message(msg_id, payload, attributes))
    if body.get("Type") == "Notification" and "TopicArn" in body and "Message" in body:
        inner = body["Message"]
        return unwrap(inner.encode() if isinstance(inner, str) else orjson.dumps(inner),
                      str(body.get("MessageId") or msg_id), sns_attributes(body))
    if body.get("Event") == "s3:TestEvent":
        return Unwrapped(ignored="S3 test event (sent when a notification is configured)")
    if is_s3_notification(body):
        return Unwrapped(objects=s3_objects(body))
    if is_eventbridge_s3(body):
        return Unwrapped(objects=eventbridge_objects(body))
    return Unwrapped(message=Message(msg_id, payload, attributes))


def sns_attributes(sns: Mapping[str, Any]) -> dict[str, str]:
    """SNS ``MessageAttributes`` as plain strings."""
    attrs = sns.get("MessageAttributes") or {}
    return {k: str(v.get("Value", "")) for k, v in attrs.items() if isinstance(v, dict)}


def sqs_attributes(record: Mapping[str, Any]) -> dict[str, str]:
    """SQS ``messageAttributes`` with a string value, as plain strings."""
    attrs = record.get("messageAttributes") or {}
    return {k: str(v["stringValue"]) for k, v in attrs.items()
            if isinstance(v, dict) and v.get("stringValue") is not None}


def _raw(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else orjson.dumps(value)


def sqs_delivery(record: Mapping[str, Any]) -> Delivery:
    """One SQS record as received (its system attributes kept for the poison record)."""
    attrs: dict[str, Any] = {**sqs_attributes(record), "sqs": record.get("attributes") or {}}
    return Delivery("sqs", str(record.get("messageId")), _raw(record.get("body") or ""), attrs)


def sns_delivery(record: Mapping[str, Any]) -> Delivery:
    sns = record.get("Sns") or {}
    return Delivery("sns", str(sns.get("MessageId")), _raw(sns.get("Message") or ""),
                    {**sns_attributes(sns), "TopicArn": str(sns.get("TopicArn") or "")})


def object_delivery(source: str, ident: str, record: Mapping[str, Any], bucket: Any,
                    key: Any) -> Delivery:
    """An S3 record or EventBridge event as received: the whole record is the payload."""
    root = f"s3://{bucket}/" if isinstance(bucket, str) and bucket else None
    return Delivery(source, ident, orjson.dumps(record), {}, root, str(key or ident))
