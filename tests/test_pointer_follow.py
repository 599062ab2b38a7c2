"""Warm instances follow the LATEST pointer: a new version is picked up without a restart,
a bad one is refused and the served version stays.

Over a socket: the subject is a warm process whose own poll thread moves it between
versions while it serves, as on the platform."""

from __future__ import annotations

import hashlib
import json
import time

from tests.conftest import DEMO_CARD, DEMO_MODEL
from tests.servers import Served

ROW = {"instances": [[6.7, 3.0, 5.2, 2.3]]}


def put_version(bucket, version: str, model: bytes | None = None, sha256: str | None = None) -> str:
    card = json.loads(DEMO_CARD.read_text())
    card["version"] = version
    if model is not None:
        card["sha256"] = sha256 or hashlib.sha256(model).hexdigest()
    bucket.blob(f"models/iris/{version}/model.onnx").upload_from_string(
        model if model is not None else DEMO_MODEL.read_bytes())
    bucket.blob(f"models/iris/{version}/model.card.json").upload_from_string(json.dumps(card))
    uri = f"gs://{bucket.name}/models/iris/{version}/model.onnx"
    bucket.blob("models/iris/LATEST").upload_from_string(json.dumps({"model_uri": uri}))
    return uri


def served_version(fn: Served) -> str:
    return fn.post("/predict", json=ROW).json()["model_version"]


def wait_for(fn: Served, predicate, what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit  # a bound for a hang, not a speed check
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen\n{fn.log()}")


def test_warm_instance_follows_the_pointer_and_refuses_a_bad_version(
        serve, gcs_env, gcs_bucket) -> None:
    put_version(gcs_bucket, "1")
    fn = serve({**gcs_env, "MODEL_URI": f"gs://{gcs_bucket.name}/models/iris/LATEST",
                "MODEL_POLL_SECONDS": "0.2"})
    assert served_version(fn) == "1"

    put_version(gcs_bucket, "2")
    wait_for(fn, lambda: served_version(fn) == "2", "the move to version 2")

    put_version(gcs_bucket, "3", model=b"not an onnx model")  # verified, but not a model
    wait_for(fn, lambda: "refused" in fn.log() and "models/iris/3" in fn.log(),
             "the refusal of version 3")
    assert served_version(fn) == "2"

    put_version(gcs_bucket, "4", model=b"corrupted in transit", sha256="0" * 64)
    wait_for(fn, lambda: "sha256 mismatch" in fn.log(), "the refusal of version 4")
    assert served_version(fn) == "2"
    assert fn.get("/readyz").status_code == 200
