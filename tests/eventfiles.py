"""Recorded event bodies (tests/events/*.json), filled in for one test, and ways to post them
(to a URL over a socket, or to a served function in process: tests/inprocess.py).

The JSON files follow the samples Google and AWS document; a test only swaps in its own
bucket, object name, generation (a *string*, as in real storage events) or message data.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import requests

EVENTS = Path(__file__).resolve().parent / "events"


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def storage_cloud_event(bucket: str, name: str, generation: int | str) -> dict[str, Any]:
    """A structured-mode google.cloud.storage.object.v1.finalized CloudEvent."""
    event = load("storage_finalized.json")
    gen = str(generation)
    event["source"] = f"//storage.googleapis.com/projects/_/buckets/{bucket}"
    event["subject"] = f"objects/{name}"
    event["id"] = f"{bucket}-{name}-{gen}"
    event["data"].update(bucket=bucket, name=name, generation=gen,
                         id=f"{bucket}/{name}/{gen}")
    return event


def legacy_storage_event(bucket: str, name: str, generation: int | str) -> dict[str, Any]:
    """A legacy (background function) google.storage.object.finalize event."""
    event = load("storage_legacy.json")
    event["context"]["resource"]["name"] = f"projects/_/buckets/{bucket}/objects/{name}"
    event["data"].update(bucket=bucket, name=name, generation=str(generation),
                         id=f"{bucket}/{name}/{generation}")
    return event


def pubsub_push(data: bytes, message_id: str) -> dict[str, Any]:
    """A raw Pub/Sub push body carrying ``data``."""
    body = load("pubsub_push.json")
    msg = body["message"]
    msg["data"] = base64.b64encode(data).decode()
    msg["messageId"] = msg["message_id"] = message_id
    return body


def pubsub_cloud_event(data: bytes, message_id: str) -> dict[str, Any]:
    """A structured-mode messagePublished CloudEvent carrying ``data``."""
    event = load("pubsub_published.json")
    event["id"] = message_id
    event["data"]["message"].update(data=base64.b64encode(data).decode(), messageId=message_id)
    return event


def lambda_handler() -> Any:
    """main.lambda_handler, imported late (main.py builds the instance at import)."""
    from main import lambda_handler as handler

    return handler


def reset_runtime() -> None:
    """Forget the process's wiring and SDK clients: the next call reads the environment."""
    from functions.loading.sdk_clients import gcs_client, s3_client
    from functions.runtime import runtime

    runtime.cache_clear()
    s3_client.cache_clear()
    gcs_client.cache_clear()


def sqs_event(messages: list[dict[str, Any]], queue_arn: str,
              template: str = "sqs_receive.json") -> dict[str, Any]:
    """Messages received from a real queue (boto3 ``receive_message``) as the Lambda SQS
    event: the recorded record with each message's id, body and attributes."""
    base = load(template)["Records"][0]
    records = []
    for msg in messages:
        record = copy.deepcopy(base)
        record.update(messageId=msg["MessageId"], receiptHandle=msg["ReceiptHandle"],
                      body=msg["Body"], md5OfBody=msg["MD5OfBody"], eventSourceARN=queue_arn,
                      attributes={**record["attributes"], **msg.get("Attributes", {})},
                      messageAttributes={k: {"stringValue": v.get("StringValue"),
                                             "dataType": v["DataType"]}
                                         for k, v in msg.get("MessageAttributes", {}).items()})
        records.append(record)
    return {"Records": records}


def _post(to: Any, path: str, **kw: Any) -> Any:
    """POST to ``to + path``: ``to`` is a base URL (over a socket) or a served function, in
    process or not (anything with ``.post(path, **kw)``)."""
    if isinstance(to, str):
        return requests.post(to + path, timeout=60, **kw)
    return to.post(path or "/", **kw)


def post_structured(to: Any, event: dict[str, Any], path: str = "") -> Any:
    return _post(to, path, data=json.dumps(event),
                 headers={"Content-Type": "application/cloudevents+json"})


def post_binary(to: Any, event: dict[str, Any], path: str = "") -> Any:
    """The same CloudEvent in binary mode: attributes as ce-* headers, data as the body."""
    attrs = copy.deepcopy(event)
    data = attrs.pop("data")
    headers = {f"ce-{k}": str(v) for k, v in attrs.items() if k != "datacontenttype"}
    headers["Content-Type"] = attrs.get("datacontenttype", "application/json")
    return _post(to, path, data=json.dumps(data), headers=headers)


def post_json(to: Any, body: dict[str, Any], path: str = "") -> Any:
    """A legacy event or a raw push body: plain JSON."""
    return _post(to, path, json=body)
