"""Topics and push subscriptions on the Pub/Sub emulator (google-cloud-pubsub, the real
client), and waiting for what the pushed function writes to the GCS emulator."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

PROJECT = "test-project"


def push_topic(name: str, endpoint: str) -> Callable[..., str]:
    """A topic with a push subscription to ``endpoint``; returns ``publish(data, **attrs)``,
    which answers the message id the emulator assigned."""
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(PROJECT, name)
    publisher.create_topic(name=topic)
    subscriber.create_subscription(request={
        "name": subscriber.subscription_path(PROJECT, f"{name}-push"), "topic": topic,
        "push_config": {"push_endpoint": f"{endpoint}/projects/{PROJECT}/topics/{name}"},
        "ack_deadline_seconds": 30,
    })

    def publish(data: bytes, **attributes: str) -> str:
        return publisher.publish(topic, data, **attributes).result(timeout=30)

    return publish


def wait_until(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something truthy (redelivery is the emulator's to
    time, so this waits for the effect, not for a fixed delay)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise TimeoutError(f"{what} not seen after {timeout}s")


def blob_lines(bucket: Any, name: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in bucket.blob(name).download_as_bytes().splitlines()]


def names(bucket: Any, prefix: str) -> list[str]:
    return sorted(b.name for b in bucket.client.list_blobs(bucket.name, prefix=prefix))
