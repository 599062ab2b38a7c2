"""Local files (plain paths and file:// URIs): development, tests, mounted volumes.

Writes go to a temporary file beside the target and are renamed into place when the
``with`` block succeeds, so readers never see a partial object.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

from functions.loading.object_store import FetchError, ObjectRef, ObjectStore, Progress


def local_path(uri: str) -> Path:
    """A ``file://`` URI or plain path as a Path."""
    return Path(urlparse(uri).path if uri.startswith("file://") else uri)


class FileStore(ObjectStore):
    scheme = "file"

    def _download(self, uri: str, dest: Path) -> None:
        shutil.copyfile(local_path(uri), dest)

    def get(self, uri: str) -> bytes:
        try:
            return local_path(uri).read_bytes()
        except OSError as exc:
            raise FetchError(f"cannot read {uri}: {exc}") from exc

    def read_range(self, uri: str, start: int, length: int) -> bytes:
        with open(local_path(uri), "rb") as fh:
            fh.seek(start)
            return fh.read(max(0, length))

    def exists(self, uri: str) -> bool:
        return local_path(uri).is_file()

    def version(self, uri: str) -> str | None:
        path = local_path(uri)
        return str(path.stat().st_mtime_ns) if path.exists() else None

    def open_read(self, ref: ObjectRef, block: int) -> IO[bytes]:
        return open(local_path(ref.uri), "rb", buffering=block)

    @contextmanager
    def open_write(self, uri: str,
                   content_type: str = "application/x-ndjson") -> Iterator[IO[bytes]]:
        dest = local_path(uri)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as sink:
                yield sink
            os.replace(tmp, dest)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def put(self, uri: str, data: bytes, content_type: str = "application/json") -> None:
        with self.open_write(uri, content_type) as sink:
            sink.write(data)

    def upload_file(self, path: Path, uri: str, content_type: str,
                    progress: Progress | None = None) -> None:
        dest = local_path(uri)
        if dest.exists():
            raise FileExistsError(f"{uri} exists")
        with open(path, "rb") as src, self.open_write(uri) as sink:
            while chunk := src.read(1 << 20):
                sink.write(chunk)
                if progress:
                    progress(len(chunk))

    def list_objects(self, prefix_uri: str) -> Iterator[ObjectRef]:
        root = local_path(prefix_uri)
        base, pattern = (root, "*") if root.is_dir() else (root.parent, root.name + "*")
        for path in sorted(base.rglob(pattern)):
            if path.is_file():
                yield ObjectRef("file", "", str(path).lstrip("/"), str(path.stat().st_mtime_ns))
