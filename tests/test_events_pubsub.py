"""on_pubsub_message served by functions-framework (Flask path) over real HTTP: raw push
bodies and messagePublished CloudEvents; results in the GCS emulator, one object per
message id; poison acknowledged, a storage outage answered 500 so Pub/Sub redelivers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.eventfiles import (
    post_binary,
    post_json,
    post_structured,
    pubsub_cloud_event,
    pubsub_push,
)
from tests.servers import Served, free_port, start_function

ROW = [5.1, 3.5, 1.4, 0.2]


def _fn(env: dict[str, str], tmp: Any) -> Served:
    return start_function({"GOOGLE_CLOUD_PROJECT": "test-project", "CHUNK_ROWS": "2", **env}, tmp,
                          target="on_pubsub_message",
                          wait=None)


@pytest.fixture(scope="module")
def results(gcs_server: str) -> Any:
    from google.cloud import storage

    return storage.Client(project="test-project").create_bucket(f"pubsub-results-{free_port()}")


@pytest.fixture(scope="module")
def pubsub_fn(gcs_server: str, results: Any,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = _fn({"STORAGE_EMULATOR_HOST": gcs_server,
                  "MESSAGE_OUTPUT_URI": f"gs://{results.name}/predictions"},
                 tmp_path_factory.mktemp("pubsub-fn"))
    yield served
    served.stop()


def _lines(bucket: Any, name: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in bucket.blob(name).download_as_bytes().splitlines()]


def _ids(bucket: Any) -> list[str]:
    return sorted(b.name for b in bucket.client.list_blobs(bucket.name, prefix="predictions/"))


def test_push_body_with_instances_writes_one_object_per_message_id(pubsub_fn, results) -> None:
    data = json.dumps({"instances": [ROW, [6.7, 3.0, 5.2, 2.3], [1, 2]]}).encode()
    for _ in range(2):  # a redelivery overwrites the same object
        resp = post_json(pubsub_fn.url + "/projects/p/topics/t", pubsub_push(data, "push-1"))
        assert resp.status_code == 200, pubsub_fn.log()
    out = _lines(results, "predictions/push-1.jsonl")
    assert [(o["row"], o["prediction"]["label"]) for o in out] == [(0, "setosa"), (1, "virginica")]
    [err] = _lines(results, "predictions/push-1.errors.jsonl")
    assert err["row"] == 2 and err["error"]["code"] == "invalid_instance"
    assert [n for n in _ids(results) if "push-1" in n] == [
        "predictions/push-1.errors.jsonl", "predictions/push-1.jsonl"]


def test_cloud_events_with_a_file_reference(pubsub_fn, results, gcs_bucket) -> None:
    gcs_bucket.blob("data/rows.csv").upload_from_string("1,2,3,4\n" * 5 + "5.1,3.5,1.4,0.2\n")
    data = json.dumps({"uri": f"gs://{gcs_bucket.name}/data/rows.csv"}).encode()
    assert post_structured(pubsub_fn.url, pubsub_cloud_event(data, "ce-1")).status_code == 200
    assert post_binary(pubsub_fn.url, pubsub_cloud_event(data, "ce-2")).status_code == 200
    for msg in ("ce-1", "ce-2"):
        out = _lines(results, f"predictions/{msg}.jsonl")
        assert [o["row"] for o in out] == list(range(6))  # headerless CSV: every line is data
        assert out[-1]["prediction"]["label"] == "setosa"


@pytest.mark.parametrize("data", [
    b"not json", b'{"foo": 1}', b'{"instances": []}', b'{"instances": [[1,2,3,4]], "uri": "x"}',
    b'{"uri": "gs://no-such-bucket-anywhere/x.jsonl"}', b'{"uri": "https://x/y.csv"}',
], ids=["not-json", "no-key", "empty", "both", "missing-object", "bad-scheme"])
def test_poison_messages_are_acknowledged_and_write_nothing(pubsub_fn, results, data) -> None:
    msg_id = f"poison-{abs(hash(data))}"
    resp = post_json(pubsub_fn.url, pubsub_push(data, msg_id))
    assert resp.status_code == 200, pubsub_fn.log()
    assert not [n for n in _ids(results) if msg_id in n]


def test_undecodable_base64_is_poison(pubsub_fn) -> None:
    body = pubsub_push(b"", "bad-b64")
    body["message"]["data"] = "%%% not base64 %%%"
    assert post_json(pubsub_fn.url, body).status_code == 200
    assert "not base64" in pubsub_fn.log()


def test_storage_outage_answers_503_so_the_message_is_redelivered(tmp_path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    fn = _fn({"STORAGE_EMULATOR_HOST": dead, "MESSAGE_OUTPUT_URI": "gs://results/p",
              "STORAGE_RETRY_SECONDS": "1"}, tmp_path)
    try:
        data = json.dumps({"instances": [ROW]}).encode()
        assert post_json(fn.url, pubsub_push(data, "m-1")).status_code == 503
        assert "will redeliver" in fn.log()
    finally:
        fn.stop()
