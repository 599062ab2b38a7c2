"""http(s):// objects: read-only, through requests (REQUESTS_CA_BUNDLE is honoured)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any

from functions.loading.object_store import CHUNK, FetchError, ObjectRef, ObjectStore, Progress
from functions.loading.sdk_clients import NETWORK_MODULES, import_now


class HttpStore(ObjectStore):
    scheme = "https"

    def __init__(self, timeout: float = 60.0) -> None:
        import_now("requests", *NETWORK_MODULES)  # not mid-request, nor mid-fork

        self.timeout = timeout

    def _get(self, uri: str, headers: dict[str, str] | None = None, ok: tuple = (200,)) -> Any:
        import requests  # ~90 ms of import, paid only by https deployments

        resp = requests.get(uri, stream=True, timeout=self.timeout, headers=headers)
        if resp.status_code not in ok:
            resp.close()
            raise FetchError(f"GET {uri} answered HTTP {resp.status_code}", resp.status_code)
        return resp

    def _download_to(self, uri: str, sink: IO[bytes]) -> bool:
        with self._get(uri) as resp:
            for chunk in resp.iter_content(CHUNK):
                sink.write(chunk)
        return True

    def read_range(self, uri: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        rng = {"Range": f"bytes={start}-{start + length - 1}"}
        with self._get(uri, rng, (200, 206)) as resp:
            data = resp.content
        return data if resp.status_code == 206 else data[start: start + length]

    def _head(self, uri: str) -> Any:
        import requests

        return requests.head(uri, timeout=self.timeout, allow_redirects=True)

    def exists(self, uri: str) -> bool:
        status = self._head(uri).status_code
        if status == 404:
            return False
        if status >= 400:
            raise FetchError(f"HEAD {uri} answered HTTP {status}", status)
        return True

    def version(self, uri: str) -> str | None:
        return self._head(uri).headers.get("ETag", "").strip('"') or None

    def open_read(self, ref: ObjectRef, block: int) -> IO[bytes]:
        resp = self._get(ref.uri)
        resp.raw.decode_content = True
        return resp.raw

    def _read_only(self, uri: str) -> FetchError:
        return FetchError(f"{uri}: http(s) objects are read-only")

    def open_write(self, uri: str,
                   content_type: str = "application/x-ndjson") -> AbstractContextManager[IO[bytes]]:
        raise self._read_only(uri)

    def put(self, uri: str, data: bytes, content_type: str = "application/json") -> None:
        raise self._read_only(uri)

    def upload_file(self, path: Path, uri: str, content_type: str,
                    progress: Progress | None = None) -> None:
        raise self._read_only(uri)

    def list_objects(self, prefix_uri: str) -> Iterator[ObjectRef]:
        raise FetchError(f"{prefix_uri}: http(s) locations cannot be listed")
