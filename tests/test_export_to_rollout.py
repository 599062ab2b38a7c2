"""The whole path: model_export publishes a version, the storage event rolls it out.

`model_export publish` (the CLI, run in process) writes PREFIX/NAME/VERSION/model.onnx
+ model.card.json; the function (EVENT_ROUTES=true, so one service both serves and
receives the events) swaps to the new version and writes the LATEST pointer a fresh
instance starts from.
"""

from __future__ import annotations

import subprocess

from tests.conftest import DEMO_MODEL
from tests.eventfiles import post_binary, storage_cloud_event
from tests.model_export_fixtures import cli

ROW = {"instances": [[6.7, 3.0, 5.2, 2.3]]}


def run_publish(version: str, dest: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return cli("publish", DEMO_MODEL, "--to", dest, "--version", version, "--quiet", env=env)


def publish(version: str, dest: str, env: dict[str, str]) -> str:
    out = run_publish(version, dest, env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1].removeprefix("MODEL_URI=")


def test_published_version_is_rolled_out_by_its_upload_event(app, gcs_env, gcs_bucket) -> None:
    dest = f"gs://{gcs_bucket.name}/models"
    v1 = publish("1", dest, gcs_env)
    assert v1 == f"{dest}/iris/1/model.onnx"
    fn = app({**gcs_env, "MODEL_URI": v1, "EVENT_ROUTES": "true"})
    before = fn.post("/predict", json=ROW).json()
    assert before["model_version"] == "1"

    v2 = publish("2", dest, gcs_env)
    for name in ("iris/2/model.onnx", "iris/2/model.card.json"):  # as GCS sends them
        blob = gcs_bucket.get_blob(f"models/{name}")
        event = storage_cloud_event(gcs_bucket.name, blob.name, blob.generation)
        assert post_binary(fn, event, "/events").status_code == 200
    after = fn.post("/predict", json=ROW).json()
    assert after["model_version"] == "2"
    assert after["predictions"] == before["predictions"]
    pointer = gcs_bucket.blob("models/iris/LATEST").download_as_bytes().decode()
    assert v2 in pointer

    again = run_publish("2", dest, gcs_env)  # published versions are immutable
    assert again.returncode == 7 and "immutable" in again.stderr
