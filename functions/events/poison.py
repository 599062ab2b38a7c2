"""Nothing lost: a poison event is kept, whole, as one object under the errors location.

A ``Delivery`` is what a transport received, before any decoding: its source, id, raw
payload bytes and attributes, and (when the event names an object) that object's bucket.
``PoisonKeeper.keep`` writes it with the reason as one JSON object::

    {"source": "pubsub", "id": "1234", "reason": "payload is not JSON: ...",
     "attributes": {...}, "payload": "<text>"  (or "payload_base64" when not UTF-8),
     "subject": "...", "kept_at": "2026-01-01T00:00:00Z"}

named ``<errors location>/poison/<source>/<id>.json``, created only if absent: a redelivered
event finds its own record there (the first one kept stays). The errors location is, first
found: POISON_URI; the bucket of the object the event names, under ERRORS_PREFIX; the
bucket of MESSAGE_OUTPUT_URI, under ERRORS_PREFIX. With none of them there is nowhere to
keep it, and ``keep`` raises Redeliver, so the platform redelivers (HTTP: 503) and, past
its retry limit, dead-letters it: still nothing lost.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from functions.config.settings import Settings
from functions.events.failures import Redeliver
from functions.events.object_names import id_name
from functions.loading.object_store import split_bucket_uri
from functions.loading.stores import Stores


@dataclass(frozen=True)
class Delivery:
    """One event as the transport handed it over (never decoded beyond the envelope)."""

    source: str
    id: str
    payload: bytes = b""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    bucket_uri: str | None = None
    """``scheme://bucket/`` of the object the event names, when it names one."""
    subject: str = ""


def b64_or_raw(data: Any) -> bytes:
    """Pub/Sub ``data`` as bytes: decoded when it is base64, else as it came (for the record)."""
    if not isinstance(data, str):
        return orjson.dumps(data) if data is not None else b""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return data.encode()


def _payload_fields(payload: bytes) -> dict[str, str]:
    try:
        return {"payload": payload.decode("utf-8")}
    except UnicodeDecodeError:
        return {"payload_base64": base64.b64encode(payload).decode()}


class PoisonKeeper:
    """Writes poison deliveries to the errors location (see the module docstring)."""

    def __init__(self, settings: Settings, stores: Stores) -> None:
        self.settings = settings
        self.stores = stores

    def location(self, delivery: Delivery) -> str | None:
        """The prefix (ending in ``/``) that poison of this delivery goes under, or None."""
        s = self.settings
        if s.poison_uri:
            return s.poison_uri.rstrip("/") + "/"
        root = delivery.bucket_uri
        if root is None and s.message_output_uri:
            scheme = s.message_output_uri.split("://", 1)[0]
            root = f"{scheme}://{split_bucket_uri(s.message_output_uri)[0]}/"
        return f"{root.rstrip('/')}/{s.errors_prefix}poison/" if root else None

    def uri(self, delivery: Delivery) -> str | None:
        """Where this delivery's record goes (the same for every redelivery)."""
        where = self.location(delivery)
        if where is None:
            return None
        scheme, sep, rest = where.partition("://")
        bucket, _, key_prefix = rest.partition("/") if sep else ("", "", where)
        root = f"{scheme}://{bucket}/" if sep else ""
        return root + id_name(f"{key_prefix}{delivery.source}/", delivery.id, ".json")

    def keep(self, delivery: Delivery, reason: str) -> str:
        """Write the record (unless a delivery of the same event already did); return its
        URI. Raises Redeliver when there is nowhere to write it, the store's error when the
        write fails (the caller lets the platform redeliver)."""
        uri = self.uri(delivery)
        if uri is None:
            raise Redeliver(f"poison {delivery.source} {delivery.id} ({reason}): no errors "
                            "location to keep it (set POISON_URI or MESSAGE_OUTPUT_URI)")
        record = {"source": delivery.source, "id": delivery.id, "reason": reason,
                  "attributes": dict(delivery.attributes), **_payload_fields(delivery.payload),
                  "subject": delivery.subject,
                  "kept_at": datetime.now(UTC).isoformat(timespec="seconds")}
        self.stores.for_uri(uri).create(uri, orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS))
        return uri
