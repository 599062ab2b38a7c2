"""on_pubsub_message (and POST /events) in process, through functions-framework's own app
(tests/inprocess.py), posted the bodies Pub/Sub pushes: raw push bodies (with and without
data) and messagePublished CloudEvents; results in the GCS emulator, one object per message
id; poison kept whole under errors/poison/ then acknowledged; a storage outage answered 503
so Pub/Sub redelivers; an event type no handler takes refused (422). Delivery by the Pub/Sub
emulator itself, to a served function: tests/test_events_pubsub_emulator.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.eventfiles import (
    load,
    post_binary,
    post_json,
    post_structured,
    pubsub_cloud_event,
    pubsub_push,
)
from tests.inprocess import InProcess, start_in_process
from tests.servers import free_port

pytestmark = pytest.mark.xdist_group("pubsub-emulator")  # one emulator under pytest-xdist

ROW = [5.1, 3.5, 1.4, 0.2]


def _fn(env: dict[str, str], tmp: Any) -> InProcess:
    return start_in_process({"GOOGLE_CLOUD_PROJECT": "test-project", "CHUNK_ROWS": "2", **env}, tmp,
                          target="on_pubsub_message",
                          wait=None)


@pytest.fixture(scope="module")
def results(gcs_server: str) -> Any:
    from google.cloud import storage

    return storage.Client(project="test-project").create_bucket(f"pubsub-results-{free_port()}")


@pytest.fixture(scope="module")
def pubsub_fn(gcs_server: str, results: Any,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
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
        resp = post_json(pubsub_fn, pubsub_push(data, "push-1"), "/projects/p/topics/t")
        assert resp.status_code == 200, resp.text
    out = _lines(results, "predictions/push-1.jsonl")
    assert [(o["row"], o["prediction"]["label"]) for o in out] == [(0, "setosa"), (1, "virginica")]
    [err] = _lines(results, "predictions/push-1.errors.jsonl")
    assert err["row"] == 2 and err["error"]["code"] == "invalid_instance"
    assert [n for n in _ids(results) if "push-1" in n] == [
        "predictions/push-1.errors.jsonl", "predictions/push-1.jsonl"]


def test_cloud_events_with_a_file_reference(pubsub_fn, results, gcs_bucket) -> None:
    gcs_bucket.blob("data/rows.csv").upload_from_string("1,2,3,4\n" * 5 + "5.1,3.5,1.4,0.2\n")
    data = json.dumps({"uri": f"gs://{gcs_bucket.name}/data/rows.csv"}).encode()
    assert post_structured(pubsub_fn, pubsub_cloud_event(data, "ce-1")).status_code == 200
    assert post_binary(pubsub_fn, pubsub_cloud_event(data, "ce-2")).status_code == 200
    for msg in ("ce-1", "ce-2"):
        out = _lines(results, f"predictions/{msg}.jsonl")
        assert [o["row"] for o in out] == list(range(6))  # headerless CSV: every line is data
        assert out[-1]["prediction"]["label"] == "setosa"


def _kept(bucket: Any, msg_id: str) -> dict[str, Any]:
    return json.loads(bucket.blob(f"errors/poison/pubsub/{msg_id}.json").download_as_bytes())


@pytest.mark.parametrize("data", [
    b"not json", b'{"foo": 1}', b'{"instances": []}', b'{"instances": [[1,2,3,4]], "uri": "x"}',
    b'{"uri": "gs://no-such-bucket-anywhere/x.jsonl"}', b'{"uri": "https://x/y.csv"}',
], ids=["not-json", "no-key", "empty", "both", "missing-object", "bad-scheme"])
def test_poison_is_kept_whole_then_acknowledged(pubsub_fn, results, data, request) -> None:
    msg_id = f"poison-{request.node.callspec.id}"
    resp = post_json(pubsub_fn, pubsub_push(data, msg_id))
    assert resp.status_code == 200, resp.text
    want = "missing" if "missing" in msg_id else "poison"  # missing: the file it names
    assert resp.json()["outcome"] == want
    assert not [n for n in _ids(results) if msg_id in n]
    record = _kept(results, msg_id)
    assert (record["id"], record["payload"], record["attributes"]) == (
        msg_id, data.decode(), {"origin": "sample"})
    assert record["reason"] and record["reason"] in resp.json()["detail"]


def test_undecodable_base64_is_kept_as_it_came(pubsub_fn, results) -> None:
    body = pubsub_push(b"", "bad-b64")
    body["message"]["data"] = "%%% not base64 %%%"
    assert post_json(pubsub_fn, body).status_code == 200
    record = _kept(results, "bad-b64")
    assert record["payload"] == "%%% not base64 %%%" and "not base64" in record["reason"]


def test_a_push_without_data_reaches_our_code(pubsub_fn, results, gcs_bucket) -> None:
    """functions-framework's converter answers 400 to this valid body (a message may carry
    attributes alone): Pub/Sub would redeliver it until it expired."""
    gcs_bucket.blob("data/rows.csv").upload_from_string("5.1,3.5,1.4,0.2\n")
    body = load("pubsub_push_no_data.json")
    body["message"]["attributes"]["uri"] = f"gs://{gcs_bucket.name}/data/rows.csv"
    msg_id = body["message"]["messageId"]
    resp = post_json(pubsub_fn, body, "/projects/p/topics/t")
    assert resp.status_code == 200 and resp.json()["outcome"] == "scored", resp.text
    assert _lines(results, f"predictions/{msg_id}.jsonl")[0]["prediction"]["label"] == "setosa"


def test_post_events_takes_a_push_without_data_and_refuses_unknown_types(
        app, gcs_env, results, caplog: pytest.LogCaptureFixture) -> None:
    fn = app({**gcs_env, "EVENT_ROUTES": "true",
                "MESSAGE_OUTPUT_URI": f"gs://{results.name}/routes"})
    body = load("pubsub_push_no_data.json")
    body["message"]["attributes"] = {"origin": "x"}
    resp = fn.post("/events", json=body)
    assert resp.status_code == 200 and resp.json()["outcome"] == "poison", resp.text
    assert 'no "uri" attribute' in _kept(results, body["message"]["messageId"])["reason"]

    event = pubsub_cloud_event(b"{}", "unknown-1")
    event["type"] = "google.cloud.firestore.document.v1.written"
    resp = post_structured(fn, event, "/events")
    assert resp.status_code == 422 and resp.json()["outcome"] == "refused"
    assert "is not handled" in resp.json()["detail"] and "refused" in caplog.text


def test_storage_outage_answers_503_so_the_message_is_redelivered(
        tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    fn = _fn({"STORAGE_EMULATOR_HOST": dead, "MESSAGE_OUTPUT_URI": "gs://results/p",
              "STORAGE_RETRY_SECONDS": "1"}, tmp_path)
    try:
        data = json.dumps({"instances": [ROW]}).encode()
        assert post_json(fn, pubsub_push(data, "m-1")).status_code == 503
        assert "will redeliver" in caplog.text
    finally:
        fn.stop()
