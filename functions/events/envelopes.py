"""Event envelopes -> the two things our handlers act on: an object reference or a message.

An envelope is how a platform wraps the news (a CloudEvent, a legacy background event
converted by functions-framework, an S3 notification record, an SQS record); the payload is
what the news is about. This module only unwraps: it never reads objects or scores rows.
Formats, as the platforms document them:

- ``google.cloud.storage.object.v1.finalized``: data is a StorageObjectData, in which
  ``generation``, ``metageneration`` and ``size`` are *strings*.
- ``google.cloud.pubsub.topic.v1.messagePublished``: data is ``{"message": {"data": base64,
  "attributes", "messageId"}, "subscription"}`` (a raw push body has the same shape).
  ``data`` may be absent: a message needs data *or* attributes (PubsubMessage reference).
- Cloud Storage notifications through Pub/Sub: attributes ``eventType`` (OBJECT_FINALIZE,
  ...), ``bucketId``, ``objectId``, ``objectGeneration``; data is the object resource
  (payload JSON_API_V1) or absent (payload NONE).
AWS envelopes (S3, SNS, SQS, EventBridge) are unwrapped in functions/aws/records.py.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import orjson

from functions.events.failures import Poison
from functions.events.poison import Delivery, b64_or_raw
from functions.loading.object_store import ObjectRef

STORAGE_FINALIZED = "google.cloud.storage.object.v1.finalized"
STORAGE_TYPES = {f"google.cloud.storage.object.v1.{kind}"
                 for kind in ("finalized", "deleted", "archived", "metadataUpdated")}
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


def storage_delivery(event: Any) -> Delivery:
    """What a storage CloudEvent carried, for the poison record (never raises)."""
    data = event.data
    bucket = data.get("bucket") if isinstance(data, dict) else None
    raw = data if isinstance(data, bytes) else orjson.dumps(data, default=str)
    return Delivery("storage", str(event["id"]), raw, {"type": str(event["type"])},
                    f"gs://{bucket}/" if isinstance(bucket, str) and bucket else None,
                    str(event.get("subject") or event["id"]))


def _message_object(event: Any) -> dict[str, Any]:
    data = _as_dict(event.data)
    msg = data.get("message")
    if not isinstance(msg, dict):
        raise Poison('Pub/Sub event data has no "message" object')
    return msg


def pubsub_message(event: Any) -> Message:
    """The message inside a messagePublished CloudEvent (or a converted raw push body)."""
    msg = _message_object(event)
    msg_id = msg.get("messageId") or msg.get("message_id") or event["id"]
    try:
        payload = base64.b64decode(msg.get("data") or "", validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise Poison(f"message {msg_id}: data is not base64: {exc}") from None
    attributes = msg.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise Poison(f"message {msg_id}: attributes must be an object")
    return Message(str(msg_id), payload, {str(k): str(v) for k, v in attributes.items()})


def pubsub_delivery(event: Any) -> Delivery:
    """What arrived, for the poison record: never raises, whatever the event holds."""
    try:
        msg = _message_object(event)
    except Poison:
        data = event.data
        raw = data if isinstance(data, bytes) else orjson.dumps(data, default=str)
        return Delivery("pubsub", str(event["id"]), raw, {})
    attributes = msg.get("attributes") if isinstance(msg.get("attributes"), dict) else {}
    bucket = attributes.get("bucketId")
    return Delivery("pubsub", str(msg.get("messageId") or msg.get("message_id") or event["id"]),
                    b64_or_raw(msg.get("data")), attributes,
                    f"gs://{bucket}/" if isinstance(bucket, str) and bucket else None)


def gcs_notification(attrs: dict[str, str]) -> tuple[str, ObjectRef] | None:
    """(eventType, object) of a Cloud Storage Pub/Sub notification; None for other messages."""
    if not {"bucketId", "objectId", "eventType"} <= attrs.keys():
        return None
    return attrs["eventType"], ObjectRef("gs", attrs["bucketId"], attrs["objectId"],
                                         attrs.get("objectGeneration") or None)
