"""on_storage_event behind functions-framework's Flask app (its CloudEvent path, as the
platform serves it), in process through a WSGI client, storage in the GCS emulator: data
files scored in chunks, redelivery, ignored objects, roll-out and the LATEST pointer that
a cold start follows (that one over a socket: a fresh process's first load)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import DEMO_CARD, DEMO_MODEL
from tests.eventfiles import (
    legacy_storage_event,
    post_binary,
    post_json,
    post_structured,
    storage_cloud_event,
)
from tests.inprocess import InProcess, start_in_process

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The function's log records from INFO up (in process, it logs into pytest's logging)."""
    caplog.set_level(logging.INFO)
    return caplog


@pytest.fixture(scope="module")
def storage_fn(gcs_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    env = {"STORAGE_EMULATOR_HOST": gcs_server, "GOOGLE_CLOUD_PROJECT": "test-project",
           "CHUNK_ROWS": "7", "READ_BLOCK_BYTES": "1024"}
    served = start_in_process(env, tmp_path_factory.mktemp("storage-fn"),
                              target="on_storage_event", signature_type="cloudevent", wait=None)
    yield served
    served.stop()


def _upload(bucket, name: str, data: bytes) -> int:
    blob = bucket.blob(name)
    blob.upload_from_string(data)
    return blob.generation


def _jsonl(bucket, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in bucket.blob(name).download_as_bytes().splitlines()]


def _names(bucket, prefix: str) -> list[str]:
    return sorted(b.name for b in bucket.client.list_blobs(bucket.name, prefix=prefix))


def test_jsonl_upload_is_scored_in_order_with_bad_rows_in_errors(storage_fn: InProcess, log,
                                                                  gcs_bucket) -> None:
    named = dict(zip(["sepal_length", "sepal_width", "petal_length", "petal_width"], VIRGINICA))
    lines = [json.dumps(SETOSA), json.dumps(named), "{not json", "", "[1, 2, 3]"]
    lines += [json.dumps([5.0 + i / 10, 3.0, 1.5, 0.2]) for i in range(20)]
    name = "inputs/day1/batch.jsonl"
    gen = _upload(gcs_bucket, name, "\n".join(lines).encode() + b"\n")

    resp = post_binary(storage_fn, storage_cloud_event(gcs_bucket.name, name, gen))
    assert resp.status_code == 200, resp.text

    out = _jsonl(gcs_bucket, f"outputs/day1/batch.jsonl.{gen}.jsonl")
    assert [o["row"] for o in out] == [0, 1] + list(range(4, 24))  # input order, bad rows absent
    assert out[0]["prediction"]["label"] == "setosa"
    assert out[1]["prediction"]["label"] == "virginica"
    errors = _jsonl(gcs_bucket, f"errors/day1/batch.jsonl.{gen}.errors.jsonl")
    assert [(e["row"], e["line"], e["error"]["code"]) for e in errors] == [
        (2, 3, "unparseable_row"), (3, 5, "invalid_instance")]
    assert "expected 4 features" in errors[1]["error"]["message"]

    # redelivery of the same generation: the same object, found done, no duplicate
    assert post_binary(storage_fn, storage_cloud_event(
        gcs_bucket.name, "inputs/day1/batch.jsonl", gen)).status_code == 200
    assert _names(gcs_bucket, "outputs/") == [f"outputs/day1/batch.jsonl.{gen}.jsonl"]
    assert f"skipped (already scored: gs://{gcs_bucket.name}/outputs/day1" in log.text
    assert _jsonl(gcs_bucket, f"outputs/day1/batch.jsonl.{gen}.jsonl") == out


def test_csv_in_structured_mode_names_the_bad_field(storage_fn: InProcess, gcs_bucket) -> None:
    csv = ("sepal_width,sepal_length,petal_length,petal_width\n"  # any column order
           "3.5,5.1,1.4,0.2\nabc,5.1,1.4,0.2\n3.0,6.7,5.2\n3.0,6.7,5.2,2.3\n")
    gen = _upload(gcs_bucket, "inputs/a.csv", csv.encode())
    event = storage_cloud_event(gcs_bucket.name, "inputs/a.csv", gen)
    resp = post_structured(storage_fn, event)
    assert resp.status_code == 200, resp.text
    out = _jsonl(gcs_bucket, f"outputs/a.csv.{gen}.jsonl")
    assert [(o["row"], o["prediction"]["label"]) for o in out] == [(0, "setosa"), (3, "virginica")]
    errors = _jsonl(gcs_bucket, f"errors/a.csv.{gen}.errors.jsonl")
    assert [(e["row"], e["line"]) for e in errors] == [(1, 3), (2, 4)]
    assert errors[0]["error"]["details"][0]["field"] == "sepal_width"


def test_npy_from_a_legacy_event(storage_fn: InProcess, gcs_bucket) -> None:
    rows = np.array([SETOSA] * 9 + [VIRGINICA], dtype=np.float32)
    rows[4, 2] = np.nan
    buf = io.BytesIO()
    np.save(buf, rows)
    gen = _upload(gcs_bucket, "inputs/x.npy", buf.getvalue())
    resp = post_json(storage_fn, legacy_storage_event(gcs_bucket.name, "inputs/x.npy", gen))
    assert resp.status_code == 200, resp.text
    out = _jsonl(gcs_bucket, f"outputs/x.npy.{gen}.jsonl")
    assert [o["row"] for o in out] == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert out[-1]["prediction"]["label"] == "virginica"
    [error] = _jsonl(gcs_bucket, f"errors/x.npy.{gen}.errors.jsonl")
    assert error["row"] == 4 and error["error"]["details"][0]["field"] == "petal_length"


def test_objects_outside_the_watched_prefixes_are_acknowledged_and_ignored(
        storage_fn: InProcess, gcs_bucket, log) -> None:
    for name in ("misc/readme.jsonl", "inputs/notes.txt", "outputs/x.jsonl"):
        gen = _upload(gcs_bucket, name, b"[1, 2, 3, 4]\n")
        event = storage_cloud_event(gcs_bucket.name, name, gen)
        assert post_binary(storage_fn, event).status_code == 200
    # an input deleted before its event arrived: acknowledged, not retried forever
    missing = storage_cloud_event(gcs_bucket.name, "inputs/gone.jsonl", "123")
    assert post_structured(storage_fn, missing).status_code == 200
    deleted = storage_cloud_event(gcs_bucket.name, "inputs/gone.jsonl", "123")
    deleted["type"] = "google.cloud.storage.object.v1.deleted"
    assert post_structured(storage_fn, deleted).status_code == 200
    assert _names(gcs_bucket, "outputs/") == ["outputs/x.jsonl"]  # only what we put there
    assert _names(gcs_bucket, "errors/") == []
    assert "outside the watched prefixes" in log.text and "does not exist" in log.text


def _card(version: str, **changes: Any) -> bytes:
    card = json.loads(Path(DEMO_CARD).read_text())
    card.update(version=version, **changes)
    return json.dumps(card).encode()


def test_upload_rolls_out_and_a_cold_start_follows_the_pointer(
        storage_fn: InProcess, gcs_bucket, serve, gcs_env: dict[str, str], log) -> None:
    """The cold start over a socket: a fresh process's first load follows the pointer."""
    onnx = "models/iris/v2/iris.onnx"
    gen = _upload(gcs_bucket, onnx, Path(DEMO_MODEL).read_bytes())
    resp = post_binary(storage_fn, storage_cloud_event(gcs_bucket.name, onnx, gen))
    assert resp.status_code == 200  # the card is not there yet: waiting, acknowledged
    assert not gcs_bucket.blob("models/iris/LATEST").exists()

    card = "models/iris/v2/iris.card.json"
    gen = _upload(gcs_bucket, card, _card("2"))
    event = storage_cloud_event(gcs_bucket.name, card, gen)
    assert post_binary(storage_fn, event).status_code == 200
    pointer = json.loads(gcs_bucket.blob("models/iris/LATEST").download_as_bytes())
    assert pointer["version"] == "2"
    assert pointer["model_uri"] == f"gs://{gcs_bucket.name}/{onnx}"
    assert "rolled_out" in log.text

    fresh = serve({**gcs_env, "MODEL_URI": f"gs://{gcs_bucket.name}/models/iris/LATEST"})
    assert fresh.get("/model").json()["version"] == "2"
    assert fresh.post("/predict", json={"instances": [SETOSA]}).json()["model_version"] == "2"


def test_concurrent_duplicate_deliveries_leave_one_result(storage_fn: InProcess,
                                                          gcs_bucket) -> None:
    from concurrent.futures import ThreadPoolExecutor

    body = (json.dumps(SETOSA) + "\n" + "[1, 2]\n").encode() * 10
    gen = _upload(gcs_bucket, "inputs/twice.jsonl", body)
    event = storage_cloud_event(gcs_bucket.name, "inputs/twice.jsonl", gen)
    with ThreadPoolExecutor(4) as pool:  # Eventarc delivers at least once: maybe at once
        codes = list(pool.map(lambda _: post_binary(storage_fn, event).status_code, range(4)))
    assert codes == [200] * 4
    assert _names(gcs_bucket, "outputs/") == [f"outputs/twice.jsonl.{gen}.jsonl"]
    assert _names(gcs_bucket, "errors/") == [f"errors/twice.jsonl.{gen}.errors.jsonl"]
    out = _jsonl(gcs_bucket, f"outputs/twice.jsonl.{gen}.jsonl")
    assert [o["row"] for o in out] == list(range(0, 20, 2))  # whole, once, in order


def test_a_corrupt_file_is_kept_in_its_errors_object_and_marked_done(storage_fn: InProcess,
                                                                     gcs_bucket, log) -> None:
    gen = _upload(gcs_bucket, "inputs/broken.npy", b"\x93NUMPY not really")
    event = storage_cloud_event(gcs_bucket.name, "inputs/broken.npy", gen)
    assert post_structured(storage_fn, event).status_code == 200
    [line] = _jsonl(gcs_bucket, f"errors/broken.npy.{gen}.errors.jsonl")
    assert line["row"] is None and line["error"]["code"] == "unreadable_input"
    assert "not a .npy file" in line["error"]["message"]
    assert gcs_bucket.blob(f"outputs/broken.npy.{gen}.jsonl").download_as_bytes() == b""
    assert post_structured(storage_fn, event).status_code == 200
    assert log.text.count("objects/inputs/broken.npy: skipped (already scored") == 1
