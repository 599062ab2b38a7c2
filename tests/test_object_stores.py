"""One contract, four object stores: the GCS emulator, moto's S3, a local HTTP server and
the local file system, each through the same ``ObjectStore`` interface."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.loading import FetchError, ObjectRef, ObjectStore, Stores
from tests.conftest import AWS_FAKE
from tests.servers import free_port

WRITABLE = ["gs", "s3", "file"]


@pytest.fixture
def root(request: pytest.FixtureRequest, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty location of the scheme under test, as a URI prefix ending in '/'."""
    scheme = request.param
    if scheme == "gs":
        request.getfixturevalue("gcs_server")
        from google.cloud import storage

        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
        bucket = f"stores-{free_port()}"
        storage.Client(project="test-project").create_bucket(bucket)
        yield f"gs://{bucket}/"
    elif scheme == "s3":
        import boto3

        from functions.loading.sdk_clients import s3_client

        endpoint = request.getfixturevalue("s3_server")
        for key, value in {**AWS_FAKE, "AWS_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(key, value)
        s3_client.cache_clear()
        bucket = f"stores-{free_port()}"
        boto3.client("s3").create_bucket(Bucket=bucket)
        yield f"s3://{bucket}/"
        s3_client.cache_clear()
    else:
        yield f"{tmp_path}/objects/"


def store_for(uri: str) -> ObjectStore:
    return Stores(retry_seconds=5).for_uri(uri)


@pytest.mark.parametrize("root", WRITABLE, indirect=True)
def test_put_get_exists_range_version(root: str) -> None:
    uri = f"{root}a/b.json"
    store = store_for(uri)
    assert not store.exists(uri)
    store.put(uri, b'{"x": 1}')
    assert store.exists(uri) and store.get(uri) == b'{"x": 1}'
    assert store.read_range(uri, 2, 3) == b'x":'
    first = store.version(uri)
    assert first
    store.put(uri, b'{"x": 2}')
    assert store.get(uri) == b'{"x": 2}'


@pytest.mark.parametrize("root", WRITABLE, indirect=True)
def test_open_write_commits_only_on_success(root: str) -> None:
    good, bad = f"{root}out/good.jsonl", f"{root}out/bad.jsonl"
    store = store_for(good)
    with store.open_write(good) as sink:
        sink.write(b"1\n" * 1000)
    with pytest.raises(RuntimeError), store.open_write(bad) as sink:
        sink.write(b"half of it\n")
        raise RuntimeError("scoring failed midway")
    assert store.get(good) == b"1\n" * 1000
    assert not store.exists(bad)


@pytest.mark.parametrize("root", WRITABLE, indirect=True)
def test_stream_fetch_list_and_upload(root: str, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB: several blocks
    src = tmp_path / "model.onnx"
    src.write_bytes(data)
    uri = f"{root}models/m/model.onnx"
    store = store_for(uri)
    seen: list[int] = []
    store.upload_file(src, uri, "application/octet-stream", seen.append)
    assert sum(seen) == len(data)

    dest = tmp_path / "cache" / "copy.onnx"
    assert store.fetch(uri, dest) == hashlib.sha256(data).hexdigest()  # hashed as it came
    assert dest.read_bytes() == data
    assert [p.name for p in dest.parent.iterdir()] == ["copy.onnx"]  # no part file left

    refs = list(store.list_objects(f"{root}models/"))
    assert [r.uri.rsplit("/", 1)[1] for r in refs] == ["model.onnx"]
    ref = refs[0]
    assert ref.generation
    with store.open_read(ref, 64 * 1024) as stream:
        assert stream.read() == data


@pytest.mark.parametrize("root", WRITABLE, indirect=True)
def test_missing_objects_name_the_uri(root: str, tmp_path: Path) -> None:
    uri = f"{root}nothing/here.card.json"
    store = store_for(uri)
    with pytest.raises(FetchError, match="nothing/here.card.json"):
        store.get(uri)
    with pytest.raises(FetchError, match="nothing/here.card.json"):
        store.fetch(uri, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_https_store_reads_and_refuses_writes(file_server: tuple[Path, str],
                                              tmp_path: Path) -> None:
    root, url = file_server
    uri = f"{url}/iris.card.json"
    store = store_for(uri)
    expected = (root / "iris.card.json").read_bytes()
    assert store.exists(uri) and not store.exists(f"{url}/missing.json")
    assert store.get(uri) == expected
    assert store.fetch(uri, tmp_path / "card") == hashlib.sha256(expected).hexdigest()
    assert store.read_range(uri, 1, 10) == expected[1:11]
    with store.open_read(ObjectRef.parse(uri), 1024) as stream:
        assert stream.read() == expected
    with pytest.raises(FetchError, match="HTTP 404"):
        store.get(f"{url}/missing.json")
    with pytest.raises(FetchError, match="read-only"):
        store.put(uri, b"{}")


def test_local_paths_and_file_uris_are_one_store(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b"{}")
    stores = Stores()
    assert stores.for_uri(str(path)) is stores.for_uri(f"file://{path}")
    assert ObjectRef.parse(str(path)).uri == f"file://{path}"
    assert stores.for_uri(ObjectRef.parse(str(path)).uri).get(str(path)) == b"{}"
