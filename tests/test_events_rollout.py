"""Model swap under load, over real HTTP: the serving process receives the storage events
itself (POST /events, EVENT_ROUTES=true) while clients keep calling /predict.

Over a socket: the subject is a served process swapping its model while concurrent
clients keep it busy."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from tests.conftest import DEMO_CARD, DEMO_MODEL
from tests.eventfiles import post_binary, post_json, pubsub_push, storage_cloud_event

ROW = [5.1, 3.5, 1.4, 0.2]


class Load:
    """Client threads calling /predict until stopped; every answer is recorded."""

    def __init__(self, url: str, threads: int = 3) -> None:
        self.url, self.stop = url + "/predict", threading.Event()
        self.seen: list[tuple[int, Any]] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with requests.Session() as http:
            while not self.stop.is_set():
                resp = http.post(self.url, json={"instances": [ROW]}, timeout=30)
                body = resp.json()
                self.seen.append((resp.status_code, body.get("model_version", body)))

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def _publish(bucket, version: str, onnx: bytes, **card_changes: Any) -> tuple[str, int]:
    """Upload a version (card first, then the model) and return the model's (name, generation)."""
    card = json.loads(Path(DEMO_CARD).read_text())
    card.update(version=version, sha256=hashlib.sha256(onnx).hexdigest())
    card.update(card_changes)
    bucket.blob(f"models/iris/v{version}/iris.card.json").upload_from_string(json.dumps(card))
    blob = bucket.blob(f"models/iris/v{version}/iris.onnx")
    blob.upload_from_string(onnx)
    return blob.name, blob.generation


def test_swap_under_load_and_bad_uploads_keep_the_old_model(serve, gcs_env, gcs_bucket) -> None:
    good = Path(DEMO_MODEL).read_bytes()
    _publish(gcs_bucket, "1", good)
    # a hand-written pointer (one URI line) starts the service on v1
    gcs_bucket.blob("models/iris/LATEST").upload_from_string(
        f"gs://{gcs_bucket.name}/models/iris/v1/iris.onnx\n")
    fn = serve({**gcs_env, "EVENT_ROUTES": "true",
                "MODEL_URI": f"gs://{gcs_bucket.name}/models/iris/LATEST",
                "MESSAGE_OUTPUT_URI": f"gs://{gcs_bucket.name}/results/"})
    assert fn.get("/model").json()["version"] == "1"
    events = fn.url + "/events"

    def outcome(name: str, generation: int) -> dict[str, Any]:
        resp = post_binary(events, storage_cloud_event(gcs_bucket.name, name, generation))
        assert resp.status_code == 200, resp.text
        return resp.json()

    with Load(fn.url) as load:
        published = _publish(gcs_bucket, "2", good)
        answered = len(load.seen)  # counted from the event on: only the roll-out's own time
        swap = outcome(*published)
        assert swap["outcome"] == "rolled_out", swap
        during = len(load.seen) - answered

        corrupt = b"this is not an onnx graph" * 100  # its card's sha256 matches: load fails
        refused = [outcome(*_publish(gcs_bucket, "3", corrupt)),
                   outcome(*_publish(gcs_bucket, "4", good, sha256="0" * 64)),
                   outcome(*_publish(gcs_bucket, "5", good, labels=["a", "b", "c"]))]
        assert [r["outcome"] for r in refused] == ["refused"] * 3, refused
        assert "cannot load" in refused[0]["detail"]
        assert "sha256 mismatch" in refused[1]["detail"]
        assert "labels" in refused[2]["detail"]
        assert fn.get("/model").json()["version"] == "2"

    statuses = Counter(status for status, _ in load.seen)
    versions = [v for _, v in load.seen]
    assert statuses == {200: len(load.seen)}, [s for s in load.seen if s[0] != 200][:3]
    assert during > 0  # requests kept being answered while the new version loaded
    assert set(versions) <= {"1", "2"} and versions[-1] == "2"
    pointer = json.loads(gcs_bucket.blob("models/iris/LATEST").download_as_bytes())
    assert pointer["version"] == "2"  # refused versions never reach the pointer

    # the same route takes a Pub/Sub push body too
    resp = post_json(events, pubsub_push(json.dumps({"instances": [ROW]}).encode(), "m-1"))
    assert resp.status_code == 200 and resp.json()["outcome"] == "scored"
    [line] = gcs_bucket.blob("results/m-1.jsonl").download_as_bytes().splitlines()
    assert json.loads(line)["prediction"]["label"] == "setosa"
    assert requests.post(events, data=b"not an event", timeout=10).status_code == 400
