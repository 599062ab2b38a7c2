"""A message arrived (Pub/Sub, SQS): its payload asks for predictions.

Payload (JSON): ``{"instances": [...]}`` scores those rows; ``{"uri": "gs://b/k.csv"}``
scores that file. A message without data (Pub/Sub allows attributes alone) is read from its
``uri`` attribute. Results go to ``MESSAGE_OUTPUT_URI/<message id>.jsonl`` (bad rows to
``<message id>.errors.jsonl``); a redelivered message finds its result there and writes
nothing new (two deliveries at once: the first to commit writes it, the other finds it).
Undecodable or schema-invalid payloads, and files that do not exist, are Poison.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from functions.config.settings import Settings
from functions.events.envelopes import Message
from functions.events.failures import Poison, Redeliver
from functions.events.formats import Row, format_of
from functions.events.object_names import id_name
from functions.events.outcome import Outcome
from functions.events.scoring import Scorer, scored_detail
from functions.loading.object_store import ObjectRef


def _payload(msg: Message, max_instances: int) -> dict[str, Any]:
    if not msg.data.strip():
        if "uri" not in msg.attributes:
            raise Poison('message has no data, and no "uri" attribute that names a file to '
                         f"score (attributes: {sorted(msg.attributes)})")
        return _checked({"uri": msg.attributes["uri"]}, max_instances)
    try:
        body = orjson.loads(msg.data)
    except orjson.JSONDecodeError as exc:
        raise Poison(f"payload is not JSON: {exc}") from None
    return _checked(body, max_instances)


def _checked(body: Any, max_instances: int) -> dict[str, Any]:
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


class Messages:
    """Scores what each message asks for and writes its results under MESSAGE_OUTPUT_URI."""

    def __init__(self, settings: Settings, scorer: Scorer) -> None:
        self.settings = settings
        self.scorer = scorer

    def handle(self, msg: Message) -> Outcome:
        """Score what the message asks for; raise on transient failures (redelivery)."""
        settings = self.settings
        body = _payload(msg, settings.max_batch_instances)
        if not settings.message_output_uri:
            # a deployment mistake, not a bad message: hand it back until the fix
            raise Redeliver("MESSAGE_OUTPUT_URI is not set: nowhere to write message results")
        root = settings.message_output_uri.rstrip("/") + "/"
        out_uri, err_uri = id_name(root, msg.id, ".jsonl"), id_name(root, msg.id, ".errors.jsonl")
        store = self.scorer.stores.for_uri(out_uri)
        if store.exists(out_uri):
            return Outcome("skipped", f"already scored: {out_uri}", {"output": out_uri})
        if "instances" in body:
            summary = self.scorer.score_rows(_instance_rows(body["instances"]), out_uri, err_uri)
        else:
            ref = ObjectRef.parse(body["uri"])
            summary = self.scorer.score_file(ref, format_of(ref.name) or "", out_uri, err_uri)
        return Outcome("scored", scored_detail(summary, out_uri),
                       {"output": out_uri, **summary.facts()})
