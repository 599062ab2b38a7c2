"""Event pushes share the instance's memory for requests in flight (functions.http.admission)
with the prediction routes, through the real app (POST /events, and main.on_pubsub_message
at every path): a push charged from its Content-Length before its body is read waits while
a larger one holds the memory, is answered 503 with a Retry-After if it waits past
ADMISSION_WAIT_SECONDS (Pub/Sub then delivers it again), and nothing stays charged or is
lost. Results land in the GCS emulator, one object per message id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import orjson

from tests.eventfiles import pubsub_push
from tests.test_lookups import metric

ROWS = [[4.3 + i % 36 / 10, 3.0, 1.0 + i % 59 / 10, 1.2] for i in range(4000)]
MEMORY = {"REQUESTS_MEMORY_MB": "16"}
"""The large lane holds 14 MiB, and a push of more than 64 KiB (4 bytes held per body byte:
over 1/64 of the budget) is charged to it."""


def _push(message_id: str, rows: list[list[float]]) -> bytes:
    return orjson.dumps(pubsub_push(json.dumps({"instances": rows}).encode(), message_id))


async def _trickled(body: bytes, seconds: float) -> AsyncIterator[bytes]:
    """``body`` sent in two parts ``seconds`` apart (chunked: no Content-Length, so it is
    charged as the largest push and holds the whole large lane meanwhile)."""
    yield body[:10]
    await asyncio.sleep(seconds)
    yield body[10:]


def _scored(bucket: Any, prefix: str, message_id: str) -> int:
    return bucket.blob(f"{prefix}/{message_id}.jsonl").download_as_bytes().count(b"\n")


def _json(body: bytes | AsyncIterator[bytes]) -> dict[str, Any]:
    return {"content": body, "headers": {"content-type": "application/json"}}


def test_a_push_waits_while_a_larger_one_holds_the_memory(
        app: Any, gcs_env: dict[str, str], gcs_bucket: Any) -> None:
    fn = app({**gcs_env, **MEMORY, "ADMISSION_WAIT_SECONDS": "5", "EVENT_ROUTES": "true",
              "MESSAGE_OUTPUT_URI": f"gs://{gcs_bucket.name}/routes"})
    waits = metric(fn, "admission_waits_total")
    large = _push("held-1", ROWS[:10])
    medium = _push("waits-1", ROWS)  # ~110 KB: the large lane, behind the held one
    small = _push("small-1", ROWS[:3])  # ~1 KB: the small lane, in at once
    assert len(medium) > 64 << 10 and len(small) < 16 << 10
    held, waited, passed = fn.concurrently("POST", "/events", [
        _json(_trickled(large, 0.5)), _json(medium), _json(small)])
    for resp in (held, waited, passed):
        assert resp.status_code == 200 and resp.json()["outcome"] == "scored", resp.text
    assert metric(fn, "admission_waits_total") == waits + 1  # the medium push, only
    assert metric(fn, "admission_held_bytes") == 0
    assert [_scored(gcs_bucket, "routes", m) for m in ("held-1", "waits-1", "small-1")] == \
        [10, len(ROWS), 3]


def test_a_push_that_waits_too_long_is_503_then_delivered_again(
        app: Any, gcs_env: dict[str, str], gcs_bucket: Any) -> None:
    push = app({**gcs_env, **MEMORY, "ADMISSION_WAIT_SECONDS": "1",
                "MESSAGE_OUTPUT_URI": f"gs://{gcs_bucket.name}/push"},
               target="on_pubsub_message", wait=None)
    medium = _push("late-1", ROWS)
    held, refused = push.concurrently("POST", "/projects/p/topics/t", [
        _json(_trickled(_push("held-2", ROWS[:5]), 3.0)), _json(medium)])
    assert held.status_code == 200, held.text
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "overloaded"
    assert refused.headers["retry-after"] == "1"
    assert not gcs_bucket.blob("push/late-1.jsonl").exists()  # refused unread: not scored
    again = push.post("/projects/p/topics/t", **_json(medium))  # Pub/Sub's redelivery
    assert again.status_code == 200 and again.json()["outcome"] == "scored", again.text
    assert _scored(gcs_bucket, "push", "late-1") == len(ROWS)
    assert _scored(gcs_bucket, "push", "held-2") == 5
