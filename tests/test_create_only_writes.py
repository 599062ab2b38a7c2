"""Outputs, errors objects and kept poison are created only if absent (issue 25, part 3):
gs:// with ``ifGenerationMatch=0``, s3:// with ``If-None-Match: *``, local files with an
exclusive link. A writer that finds the object there loses the race, and that counts as
done. gcp-storage-emulator ignores ``ifGenerationMatch`` (asserted below), so the gs://
cases go through a far end that enforces it as Cloud Storage does (tests/far_end.py);
moto enforces ``If-None-Match`` itself, behind a far end that makes both writers meet.
"""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import CloudEvent

from functions.config.settings import Settings
from functions.events.outcome import Outcome
from functions.loading import ObjectRef, ObjectStore, Stores
from functions.loading.object_store import AlreadyExists
from tests.conftest import AWS_FAKE
from tests.eventfiles import storage_cloud_event
from tests.far_end import FarEnd, start_far_end
from tests.servers import free_port

SCHEMES = ["gs", "s3", "file"]


@pytest.fixture
def far_gcs(gcs_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FarEnd]:
    """A far end in front of the GCS emulator, enforcing ifGenerationMatch=0; the SDK
    client of this process talks to it for the test."""
    from functions.loading.sdk_clients import gcs_client

    far = start_far_end(gcs_server)
    far.gcs_create_only = True
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", far.url)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
    gcs_client.cache_clear()
    yield far
    gcs_client.cache_clear()
    far.shutdown()


@pytest.fixture
def far_s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FarEnd]:
    """A far end in front of moto; boto3 in this process talks to it for the test."""
    from functions.loading.sdk_clients import s3_client

    far = start_far_end(s3_server)
    for key, value in {**AWS_FAKE, "AWS_ENDPOINT_URL": far.url}.items():
        monkeypatch.setenv(key, value)
    s3_client.cache_clear()
    yield far
    s3_client.cache_clear()
    far.shutdown()


@pytest.fixture
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, FarEnd | None]]:
    """(a fresh location of the scheme under test ending in '/', its far end or None)."""
    scheme = request.param
    if scheme == "gs":
        from google.cloud import storage

        far = request.getfixturevalue("far_gcs")
        bucket = f"create-{free_port()}"
        storage.Client(project="test-project").create_bucket(bucket)
        yield f"gs://{bucket}/", far
    elif scheme == "s3":
        from functions.loading.sdk_clients import s3_client

        far = request.getfixturevalue("far_s3")
        bucket = f"create-{free_port()}"
        s3_client().create_bucket(Bucket=bucket)
        s3_client().put_bucket_versioning(Bucket=bucket,  # every write leaves a version
                                          VersioningConfiguration={"Status": "Enabled"})
        yield f"s3://{bucket}/", far
    else:
        yield f"{tmp_path}/objects/", None


def store_for(uri: str) -> ObjectStore:
    return Stores(retry_seconds=5).for_uri(uri)


def versions(uri: str) -> int:
    """How many times the object at ``uri`` was written (S3: versions; else 1 if present)."""
    from functions.loading.object_store import split_bucket_uri

    if uri.startswith("s3://"):
        from functions.loading.sdk_clients import s3_client

        bucket, key = split_bucket_uri(uri)
        listed = s3_client().list_object_versions(Bucket=bucket, Prefix=key)
        return sum(v["Key"] == key for v in listed.get("Versions", []))
    return int(store_for(uri).exists(uri))


def test_the_emulator_itself_ignores_if_generation_match(gcs_bucket) -> None:
    """Why gs:// goes through the far end: the emulator replaces the object anyway. If this
    fails, the emulator learnt preconditions and the far end's enforcement can go."""
    blob = gcs_bucket.blob("x.json")
    blob.upload_from_string(b"first")
    gcs_bucket.blob("x.json").upload_from_string(b"second", if_generation_match=0)
    assert gcs_bucket.blob("x.json").download_as_bytes() == b"second"


@pytest.mark.parametrize("root", SCHEMES, indirect=True)
def test_a_second_create_writes_nothing_and_says_so(root: tuple[str, FarEnd | None]) -> None:
    prefix, far = root
    uri = f"{prefix}outputs/a.jsonl"
    store = store_for(uri)
    with store.open_write(uri) as sink:
        sink.write(b"first\n")
    with pytest.raises(AlreadyExists, match="outputs/a.jsonl"), store.open_write(uri) as sink:
        sink.write(b"second\n")
    with pytest.raises(AlreadyExists), store.open_write(uri) as sink:  # several chunks
        for _ in range(3):
            sink.write(b"x" * (1 << 20))
    gc.collect()  # a refused writer left open would be closed again by its finalizer here
    assert store.get(uri) == b"first\n"
    assert store.create(f"{prefix}poison/p.json", b"{}") is True
    assert store.create(f"{prefix}poison/p.json", b'{"again": 1}') is False
    assert store.get(f"{prefix}poison/p.json") == b"{}"
    assert versions(uri) == 1 and versions(f"{prefix}poison/p.json") == 1
    if far is not None and prefix.startswith("gs://"):  # what the SDK sent, and was told
        starts = [path for method, path, _ in far.requests
                  if method == "POST" and path.startswith("/upload/")]
        # five starts, each with the precondition, none again after its refusal
        assert len(starts) == 5 and all("ifGenerationMatch=0" in p for p in starts), starts
        assert len(far.answered(412, "uploadType=resumable")) == 2  # refused as they start
        assert far.answered(412, "uploadType=multipart")  # the second create(): one request
    store.put(f"{prefix}poison/p.json", b"[]")  # put still replaces (pointers)
    assert store.get(f"{prefix}poison/p.json") == b"[]"
    if prefix.startswith("/"):
        assert sorted(p.name for p in Path(prefix).rglob("*")) == ["a.jsonl", "outputs",
                                                                  "p.json", "poison"]


@pytest.mark.parametrize("root", SCHEMES, indirect=True)
def test_two_writers_meeting_at_the_store_leave_one_object(
        root: tuple[str, FarEnd | None]) -> None:
    """Both writers are inside their ``with`` block when either commits: one object, the
    other writer told AlreadyExists."""
    prefix, far = root
    uri = f"{prefix}outputs/raced.jsonl"
    both_written = threading.Barrier(2, timeout=30)
    won: list[bytes] = []
    lost: list[bytes] = []

    def write(tag: bytes) -> None:
        try:
            with store_for(uri).open_write(uri) as sink:
                sink.write(tag * 1000)
                both_written.wait()
            won.append(tag)
        except AlreadyExists:
            lost.append(tag)

    threads = [threading.Thread(target=write, args=(tag,)) for tag in (b"a\n", b"b\n")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(won) == 1 and len(lost) == 1, (won, lost)
    assert store_for(uri).get(uri) == won[0] * 1000
    assert versions(uri) == 1


@pytest.mark.parametrize("root", ["s3"], indirect=True)
def test_a_large_s3_output_goes_up_in_parts_and_creates_only(
        root: tuple[str, FarEnd | None]) -> None:
    prefix, far = root
    uri = f"{prefix}outputs/large.jsonl"
    store = store_for(uri)
    store.PART_BYTES = 5 << 20  # type: ignore[attr-defined]  # S3's least part size
    data = bytes(range(256)) * (11 << 12)  # 11 MiB: three parts
    with store.open_write(uri) as sink:
        sink.write(data)
    with pytest.raises(AlreadyExists), store.open_write(uri) as sink:
        sink.write(data[::-1])  # in parts too: the check is on CompleteMultipartUpload
    assert store.get(uri) == data and versions(uri) == 1
    assert far is not None and far.answered(412, "uploadId=")  # CompleteMultipartUpload
    from functions.loading.object_store import split_bucket_uri
    from functions.loading.sdk_clients import s3_client

    bucket, _ = split_bucket_uri(uri)
    assert not s3_client().list_multipart_uploads(Bucket=bucket).get("Uploads")  # aborted



GOOD = [5.1, 3.5, 1.4, 0.2]


def _instances(tmp_path: Path, count: int = 2, **fields: Any) -> list[Any]:
    """``count`` instances of the function in this process: each its own wiring (stores,
    holder, event handlers), as on separate machines; the model is the bundled demo."""
    from functions.runtime import build

    runtimes = [build(Settings(model_cache_dir=tmp_path / f"instance-{i}", chunk_rows=500,
                               **fields)) for i in range(count)]
    deadline = time.monotonic() + 60
    while any(rt.holder.model is None for rt in runtimes) and time.monotonic() < deadline:
        time.sleep(0.05)
    return runtimes


def _together(calls: list[Callable[[], Outcome]]) -> list[Outcome]:
    """Run ``calls`` at the same moment, one thread each; their outcomes in order."""
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        outcomes[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return outcomes


def _input(rows: int) -> bytes:
    lines = [json.dumps(GOOD)] * rows
    lines[1] = "[1, 2]"  # a bad row: an errors object is written too
    return "\n".join(lines).encode() + b"\n"


def _check(outcomes: list[Outcome], out_uri: str, err_uri: str, rows: int) -> None:
    """Both acknowledged as scored, one result, at least one lost race said so."""
    assert [o.action for o in outcomes] == ["scored", "scored"], outcomes
    assert any(o.facts.get("lost_race") for o in outcomes), outcomes
    assert versions(out_uri) == 1 and versions(err_uri) == 1
    out = store_for(out_uri).get(out_uri).splitlines()
    assert [json.loads(line)["row"] for line in out] == [0] + list(range(2, rows))
    assert len(store_for(err_uri).get(err_uri).splitlines()) == 1


@pytest.mark.parametrize("root", ["s3"], indirect=True)
def test_two_instances_scoring_one_s3_upload_write_one_result(
        root: tuple[str, FarEnd | None], tmp_path: Path) -> None:
    from functions.events import ack_or_redeliver
    from functions.loading.sdk_clients import s3_client

    prefix, far = root
    bucket, rows = prefix[5:-1], 300
    etag = s3_client().put_object(Bucket=bucket, Key="inputs/day.jsonl",
                                  Body=_input(rows))["ETag"].strip('"')
    ref = ObjectRef("s3", bucket, "inputs/day.jsonl", etag)
    assert far is not None
    far.hold_writes(2, ".jsonl.")  # both instances' errors, then outputs, meet at S3
    outcomes = _together([
        lambda rt=rt: ack_or_redeliver(lambda: rt.events().uploads.handle(ref), "s3", ref.uri)
        for rt in _instances(tmp_path)])
    _check(outcomes, f"{prefix}outputs/day.jsonl.{etag}.jsonl",
           f"{prefix}errors/day.jsonl.{etag}.errors.jsonl", rows)
    assert len(far.answered(412, "/outputs/")) == 1 and len(far.answered(412, "/errors/")) == 1


@pytest.mark.parametrize("root", ["gs"], indirect=True)
def test_two_instances_scoring_one_gcs_upload_write_one_result(
        root: tuple[str, FarEnd | None], tmp_path: Path) -> None:
    from functions.loading.sdk_clients import gcs_client

    prefix, far = root
    bucket, rows = prefix[5:-1], 300
    blob = gcs_client().bucket(bucket).blob("inputs/day.jsonl")
    blob.upload_from_string(_input(rows))
    fields = storage_cloud_event(bucket, "inputs/day.jsonl", blob.generation)
    event = CloudEvent({k: v for k, v in fields.items() if k != "data"}, fields["data"])
    assert far is not None
    far.hold_writes(2, "upload_id=")  # the last chunks of errors, then outputs, meet
    outcomes = _together([lambda rt=rt: rt.events().cloud_event(event)
                          for rt in _instances(tmp_path)])
    _check(outcomes, f"{prefix}outputs/day.jsonl.{blob.generation}.jsonl",
           f"{prefix}errors/day.jsonl.{blob.generation}.errors.jsonl", rows)
    assert len(far.answered(412, "upload_id=")) == 2  # one lost race per object


def test_two_instances_scoring_one_message_to_local_files_write_one_result(
        tmp_path: Path) -> None:
    """A message redelivered to a second instance while the first still scores it, results
    under a local MESSAGE_OUTPUT_URI. No far end makes them meet: the message is long
    enough that both are still scoring when either commits (both outcomes "scored", none
    "skipped", shows that they overlapped)."""
    from functions.events import ack_or_redeliver
    from functions.events.envelopes import Message

    rows, results = 20_000, tmp_path / "results"
    instances = [json.loads(line) for line in _input(rows).splitlines()]
    msg = Message("m-1", json.dumps({"instances": instances}).encode())
    runtimes = _instances(tmp_path, message_output_uri=str(results))
    outcomes = _together([
        lambda rt=rt: ack_or_redeliver(lambda: rt.events().message(msg), "sqs", msg.id)
        for rt in runtimes])
    _check(outcomes, str(results / "m-1.jsonl"), str(results / "m-1.errors.jsonl"), rows)
    assert sorted(p.name for p in results.iterdir()) == ["m-1.errors.jsonl", "m-1.jsonl"]
