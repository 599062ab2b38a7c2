"""An HTTP request -> a CloudEvent, for every body a push endpoint is sent.

functions-framework's own converter refuses a raw Pub/Sub push body whose message has no
``data`` (it answers 400 before any user code runs, and Pub/Sub redelivers it until it
expires), although a message with attributes alone is valid. So raw push bodies are
converted here, with or without data; CloudEvents (binary and structured) go through the
CloudEvents SDK, legacy background events through functions-framework's converter.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_http
from functions_framework import event_conversion
from functions_framework.exceptions import EventConversionException

from functions.errors import RequestError
from functions.events.envelopes import PUBSUB_PUBLISHED

_TOPIC_IN_PATH = re.compile(r"projects/[^/?]+/topics/[^/?]+")


class _LegacyRequest:
    """The two things functions-framework's legacy converter reads from a Flask request."""

    def __init__(self, body: Any, path: str) -> None:
        self._body, self.path = body, path

    def get_json(self) -> Any:
        return self._body


def raw_push_event(body: Any, path: str) -> CloudEvent | None:
    """A raw Pub/Sub push body (``{"message": {...}, "subscription": ...}``) as a
    messagePublished CloudEvent whose data is the body itself; None for any other body."""
    if not isinstance(body, dict) or "context" in body \
            or not isinstance(body.get("subscription"), str):
        return None
    msg = body.get("message")
    if not isinstance(msg, dict):
        return None
    msg_id = msg["messageId"] if "messageId" in msg else msg.get("message_id")
    if not isinstance(msg_id, str) or not msg_id:
        return None
    topic = _TOPIC_IN_PATH.search(path)
    attributes = {"id": str(msg_id), "type": PUBSUB_PUBLISHED, "specversion": "1.0",
                  "source": f"//pubsub.googleapis.com/{topic.group(0) if topic else ''}",
                  "datacontenttype": "application/json"}
    if msg.get("publishTime"):
        attributes["time"] = msg["publishTime"]
    return CloudEvent(attributes, {"message": msg, "subscription": body["subscription"]})


def cloud_event_from_http(headers: dict[str, str], body: bytes, path: str) -> Any:
    """A CloudEvent from an HTTP request (RequestError when it is not any kind of event)."""
    try:
        event = from_http(headers, body)
    except (GenericException, ValueError, TypeError) as ce_error:  # not UTF-8, not JSON, a
        # specversion that is no string (the SDK looks it up in a dict)
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise RequestError(f"not a CloudEvent ({ce_error}) nor JSON",
                               code="not_an_event") from None
        event = raw_push_event(parsed, path)
        if event is not None:
            return event
        try:
            return event_conversion.background_event_to_cloud_event(_LegacyRequest(parsed, path))
        except (EventConversionException, AttributeError, KeyError, TypeError) as exc:
            raise RequestError(f"not a CloudEvent ({ce_error}), a Pub/Sub push body "
                               f"nor a legacy event ({exc})", code="not_an_event") from None
    bad = [key for key in ("id", "source", "type") if not isinstance(event.get(key), str)]
    if bad:  # the SDK keeps a structured event's attributes as parsed: strings by the spec
        raise RequestError(f"CloudEvent attributes {bad} must be strings", code="not_an_event")
    return event
