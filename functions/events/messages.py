"""A message arrived (Pub/Sub, SQS): its payload asks for predictions.

Payload (JSON): ``{"instances": [...]}`` scores those rows; ``{"uri": "gs://b/k.csv"}``
scores that file. Results go to ``MESSAGE_OUTPUT_URI/<message id>.jsonl`` (bad rows to
``<message id>.errors.jsonl``), so a redelivered message overwrites its own result.
Undecodable or schema-invalid payloads, and files that do not exist, are Poison.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson

from functions.events.envelopes import Message, ObjectRef
from functions.events.failures import Poison
from functions.events.formats import Row, format_of
from functions.events.outcome import Outcome
from functions.events.scoring import score_rows
from functions.events.storage import score_file
from functions.storage import split_bucket_uri

if TYPE_CHECKING:
    from functions.app import Instance


def _payload(msg: Message, max_instances: int) -> dict[str, Any]:
    try:
        body = orjson.loads(msg.data)
    except orjson.JSONDecodeError as exc:
        raise Poison(f"payload is not JSON: {exc}") from None
    if not isinstance(body, dict) or ("instances" in body) == ("uri" in body):
        raise Poison('payload must be an object with either "instances" or "uri"')
    if "uri" in body:
        uri = body["uri"]
        if not isinstance(uri, str) or not uri.startswith(("gs://", "s3://")) \
                or format_of(uri) is None:
            raise Poison('"uri" must be a gs:// or s3:// .jsonl/.ndjson/.csv/.npy object')
        return body
    instances = body["instances"]
    if not isinstance(instances, list) or not instances or len(instances) > max_instances:
        raise Poison(f'"instances" must be a list of 1 to {max_instances} instances')
    return body


def _instance_rows(instances: list[Any]) -> Iterator[Row]:
    return (Row(i, None, instance) for i, instance in enumerate(instances))


def handle_message(msg: Message, inst: Instance) -> Outcome:
    """Score what the message asks for; raise on transient failures (redelivery)."""
    settings = inst.settings
    body = _payload(msg, settings.max_batch_instances)
    if not settings.message_output_uri:
        # a deployment mistake, not a bad message: raise so the messages wait for the fix
        raise RuntimeError("MESSAGE_OUTPUT_URI is not set: nowhere to write message results")
    root = settings.message_output_uri.rstrip("/") + "/"
    out_uri, err_uri = f"{root}{msg.id}.jsonl", f"{root}{msg.id}.errors.jsonl"
    if "instances" in body:
        summary = score_rows(inst, _instance_rows(body["instances"]), out_uri, err_uri)
    else:
        scheme = body["uri"].split("://", 1)[0]
        bucket, key = split_bucket_uri(body["uri"])
        summary = score_file(ObjectRef(scheme, bucket, key), format_of(key) or "", inst,
                             out_uri, err_uri)
    return Outcome("scored", f"{summary.scored} rows -> {out_uri}, {summary.errors} errors",
                   {"output": out_uri, **summary.facts()})
