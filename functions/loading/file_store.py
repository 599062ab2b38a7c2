"""Local files (plain paths and file:// URIs): development, tests, mounted volumes.

Writes go to a temporary file beside the target and are moved into place when the
``with`` block succeeds, so readers never see a partial object: ``open_write`` hard-links
it (an exclusive create: the link fails if the target exists), ``put`` renames it over the
target. Where the file system has no hard links (some FUSE mounts), creating falls back to
checking, then renaming: a writer racing another may replace its equal result.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

from functions.loading.object_store import (
    CHUNK,
    AlreadyExists,
    FetchError,
    ObjectRef,
    ObjectStore,
    Progress,
)

NO_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS)


def local_path(uri: str) -> Path:
    """A ``file://`` URI or plain path as a Path."""
    return Path(urlparse(uri).path if uri.startswith("file://") else uri)


def link_new(tmp: Path, dest: Path) -> None:
    """Give the finished ``tmp`` the name ``dest`` unless that name exists (AlreadyExists)."""
    try:
        os.link(tmp, dest)
    except FileExistsError as exc:
        raise AlreadyExists(f"{dest} exists: another writer created it first") from exc
    except OSError as exc:
        if exc.errno not in NO_LINKS:
            raise
        if dest.exists():
            raise AlreadyExists(f"{dest} exists: another writer created it first") from exc
        os.replace(tmp, dest)


class FileStore(ObjectStore):
    scheme = "file"

    def _download_to(self, uri: str, sink: IO[bytes]) -> bool:
        with open(local_path(uri), "rb") as src:
            shutil.copyfileobj(src, sink, CHUNK)
        return True

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

    @staticmethod
    @contextmanager
    def _staged(uri: str, commit: Callable[[Path, Path], None]) -> Iterator[IO[bytes]]:
        """A temporary file beside ``uri``, committed by ``commit(tmp, dest)`` when the block
        succeeds, removed in any case."""
        dest = local_path(uri)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as sink:
                yield sink
            commit(Path(tmp), dest)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def open_write(self, uri: str,
                   content_type: str = "application/x-ndjson") -> AbstractContextManager[IO[bytes]]:
        return self._staged(uri, link_new)

    def put(self, uri: str, data: bytes, content_type: str = "application/json") -> None:
        with self._staged(uri, os.replace) as sink:
            sink.write(data)

    def upload_file(self, path: Path, uri: str, content_type: str,
                    progress: Progress | None = None) -> None:
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
