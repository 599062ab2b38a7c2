"""Real Pub/Sub delivery: the emulator of the gcloud CLI pushes to on_pubsub_message served
by functions-framework; messages are published with google-cloud-pubsub; results land in
the GCS emulator. Covers instances, file references, attribute-only messages (a Cloud
Storage notification, a ``uri`` attribute, and poison), redelivery after a storage outage
(exactly one result after recovery) and redelivery of a message already scored.

Over a socket: the emulator pushes over HTTP, as Pub/Sub does; the push bodies themselves
are checked in process (test_events_pubsub.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.eventfiles import pubsub_push
from tests.pubsub_topics import blob_lines, names, push_topic, wait_until
from tests.servers import Served, free_port, start_function

pytestmark = pytest.mark.xdist_group("pubsub-emulator")  # one emulator under pytest-xdist

SETOSA, VIRGINICA = [5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]


def _pubsub_fn(env: dict[str, str], tmp: Any) -> Served:
    return start_function({"GOOGLE_CLOUD_PROJECT": "test-project", **env}, tmp,
                          target="on_pubsub_message", wait=None)


@pytest.fixture(scope="module")
def results(gcs_server: str) -> Any:
    from google.cloud import storage

    return storage.Client(project="test-project").create_bucket(f"pushed-{free_port()}")


@pytest.fixture(scope="module")
def pushed(pubsub_emulator: str, gcs_server: str, results: Any,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Any]]:
    """(the function, publish) with a push subscription from the emulator to the function."""
    fn = _pubsub_fn({"STORAGE_EMULATOR_HOST": gcs_server,
                     "MESSAGE_OUTPUT_URI": f"gs://{results.name}/predictions"},
                    tmp_path_factory.mktemp("pushed-fn"))
    yield fn, push_topic(f"requests-{free_port()}", fn.url)
    fn.stop()


def test_instances_and_file_references_are_scored(pushed, results, gcs_bucket) -> None:
    fn, publish = pushed
    rows = publish(json.dumps({"instances": [SETOSA, VIRGINICA, [1, 2]]}).encode())
    gcs_bucket.blob("data/rows.csv").upload_from_string("5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    ref = publish(json.dumps({"uri": f"gs://{gcs_bucket.name}/data/rows.csv"}).encode())

    for msg in (rows, ref):
        wait_until(lambda m=msg: results.blob(f"predictions/{m}.jsonl").exists(), msg)
        out = blob_lines(results, f"predictions/{msg}.jsonl")
        assert [o["prediction"]["label"] for o in out] == ["setosa", "virginica"], fn.log()
    [err] = blob_lines(results, f"predictions/{rows}.errors.jsonl")
    assert err["row"] == 2 and err["error"]["code"] == "invalid_instance"


def test_attribute_only_messages_are_scored_when_their_attributes_say_how(
        pushed, results, gcs_bucket) -> None:
    fn, publish = pushed
    blob = gcs_bucket.blob("inputs/day.jsonl")
    blob.upload_from_string(json.dumps(SETOSA) + "\n" + json.dumps(VIRGINICA) + "\n")
    # a Cloud Storage notification with payload format NONE: attributes, no data
    publish(b"", eventType="OBJECT_FINALIZE", payloadFormat="NONE", bucketId=gcs_bucket.name,
            objectId="inputs/day.jsonl", objectGeneration=str(blob.generation),
            notificationConfig="projects/_/buckets/b/notificationConfigs/1")
    by_uri = publish(b"", uri=f"gs://{gcs_bucket.name}/inputs/day.jsonl")

    out = f"outputs/day.jsonl.{blob.generation}.jsonl"
    wait_until(lambda: gcs_bucket.blob(out).exists(), out)
    wait_until(lambda: results.blob(f"predictions/{by_uri}.jsonl").exists(), by_uri)
    for bucket, name in ((gcs_bucket, out), (results, f"predictions/{by_uri}.jsonl")):
        assert [o["prediction"]["label"] for o in blob_lines(bucket, name)] == [
            "setosa", "virginica"], fn.log()


def test_attribute_only_message_that_says_nothing_is_kept_as_poison(pushed, results) -> None:
    fn, publish = pushed
    msg = publish(b"", origin="sensor-7")
    kept = f"errors/poison/pubsub/{msg}.json"
    wait_until(lambda: results.blob(kept).exists(), kept)
    record = json.loads(results.blob(kept).download_as_bytes())
    assert (record["id"], record["source"], record["payload"]) == (msg, "pubsub", "")
    assert record["attributes"] == {"origin": "sensor-7"}
    assert 'no "uri" attribute' in record["reason"]
    assert not results.blob(f"predictions/{msg}.jsonl").exists()


def test_redelivery_of_a_scored_message_writes_nothing_new(pushed, results) -> None:
    fn, publish = pushed
    data = json.dumps({"instances": [SETOSA]}).encode()
    msg = publish(data)
    name = f"predictions/{msg}.jsonl"
    wait_until(lambda: results.blob(name).exists(), name)
    before = results.get_blob(name)

    body = pubsub_push(data, msg)  # what the emulator pushes again after a lost ack
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: requests.post(fn.url, json=body, timeout=60),
                                range(4)))
    assert [a.json()["outcome"] for a in answers] == ["skipped"] * 4
    after = results.get_blob(name)
    assert after.generation == before.generation
    assert [n for n in names(results, "predictions/") if msg in n] == [name]


def test_storage_outage_is_redelivered_until_one_result_exists(
        pubsub_emulator: str, tmp_path) -> None:
    from gcp_storage_emulator.server import create_server
    from google.cloud import storage

    port = free_port()  # storage is down: nothing listens here yet
    fn = _pubsub_fn({"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
                     "STORAGE_RETRY_SECONDS": "1",
                     "MESSAGE_OUTPUT_URI": "gs://outage-results/p"}, tmp_path)
    server = None
    try:
        msg = push_topic(f"outage-{port}", fn.url)(json.dumps({"instances": [SETOSA]}).encode())
        wait_until(lambda: fn.log().count(f"pubsub {msg}: failed") >= 2, "two failed attempts")

        server = create_server("127.0.0.1", port, in_memory=True)
        server.start()  # storage recovers: the next redelivery succeeds
        client = storage.Client(project="test-project",
                                client_options={"api_endpoint": f"http://127.0.0.1:{port}"})
        bucket = client.create_bucket("outage-results")
        wait_until(lambda: bucket.blob(f"p/{msg}.jsonl").exists(), "the result")
        assert names(bucket, "") == [f"p/{msg}.jsonl"]
        assert blob_lines(bucket, f"p/{msg}.jsonl")[0]["prediction"]["label"] == "setosa"
        assert fn.log().count(f"pubsub {msg}: scored") == 1
    finally:
        fn.stop()
        if server is not None:
            server.stop()
