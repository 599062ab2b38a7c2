"""Event envelopes -> the two things our handlers act on: an object reference or a message.

An envelope is how a platform wraps the news (a CloudEvent, a legacy background event
converted by functions-framework, an S3 notification record, an SQS record); the payload is
what the news is about. This module only unwraps: it never reads objects or scores rows.
Formats, as the platforms document them:

- ``google.cloud.storage.object.v1.finalized``: data is a StorageObjectData, in which
  ``generation``, ``metageneration`` and ``size`` are *strings*.
- ``google.cloud.pubsub.topic.v1.messagePublished``: data is ``{"message": {"data": base64,
  "attributes", "messageId"}, "subscription"}`` (a raw push body has the same shape).
- S3 notification records: ``s3.object.key`` is URL-encoded (spaces arrive as ``+``).
- SQS records: ``messageId``, ``body`` (a string), ``messageAttributes``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import orjson

from functions.events.failures import Poison
from functions.loading.object_store import ObjectRef

STORAGE_FINALIZED = "google.cloud.storage.object.v1.finalized"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


@dataclass(frozen=True)
class Message:
    """A message from a topic or queue: its id (names the output) and raw payload bytes."""

    id: str
    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)


def _as_dict(data: Any) -> dict[str, Any]:
    if isinstance(data, (bytes, str)):  # binary mode with a non-JSON datacontenttype
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise Poison(f"event data is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Poison(f"event data must be a JSON object, got {type(data).__name__}")
    return data


def storage_object(event: Any) -> ObjectRef:
    """The object a GCS CloudEvent is about (Poison when bucket or name is missing)."""
    data = _as_dict(event.data)
    bucket, name = data.get("bucket"), data.get("name")
    if not isinstance(bucket, str) or not isinstance(name, str) or not bucket or not name:
        raise Poison("storage event data has no bucket/name")
    generation = data.get("generation")
    return ObjectRef("gs", bucket, name, str(generation) if generation is not None else None)


def pubsub_message(event: Any) -> Message:
    """The message inside a messagePublished CloudEvent (or a converted raw push body)."""
    data = _as_dict(event.data)
    msg = data.get("message")
    if not isinstance(msg, dict):
        raise Poison('Pub/Sub event data has no "message" object')
    msg_id = msg.get("messageId") or msg.get("message_id") or event["id"]
    try:
        payload = base64.b64decode(msg.get("data") or "", validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise Poison(f"message {msg_id}: data is not base64: {exc}") from None
    attributes = msg.get("attributes") or {}
    return Message(str(msg_id), payload, dict(attributes) if isinstance(attributes, dict) else {})


def is_s3_notification(body: Mapping[str, Any]) -> bool:
    """An S3 event notification (direct to Lambda, or as the body of an SQS message)."""
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
        bucket = (s3.get("bucket") or {}).get("name")
        if not bucket or not obj.get("key"):
            raise Poison("S3 record has no bucket name / object key")
        version = obj.get("versionId") or None
        etag = str(obj.get("eTag") or "").strip('"') or None
        refs.append(ObjectRef("s3", bucket, unquote_plus(obj["key"]), etag or version, version))
    return refs


def sqs_message(record: Mapping[str, Any]) -> Message:
    """One SQS record as a Message (string message attributes kept)."""
    attrs = {k: v.get("stringValue", "") for k, v in (record.get("messageAttributes") or {}).items()
             if isinstance(v, dict)}
    body = record.get("body") or ""
    data = body.encode() if isinstance(body, str) else body
    return Message(str(record["messageId"]), data, attrs)
