"""One interface to object storage, whatever the scheme: gs://, s3://, http(s):// and paths.

    ObjectStore    the interface (below); each scheme implements it in its own module:
    GcsStore       gcs_store.py    google-cloud-storage; honours STORAGE_EMULATOR_HOST
    S3Store        s3_store.py     boto3; honours AWS_ENDPOINT_URL
    HttpStore      http_store.py   requests; read-only
    FileStore      file_store.py   plain paths and file:// URIs
    Stores         stores.py       the store for a URI, one per scheme per process

Contracts shared by every store:
- ``fetch`` (whole object to a local file, atomically) and ``get`` (small objects) raise
  FetchError naming the URI and the cause, whatever the SDK raised (the SDK error stays
  in the cause chain, where ``events.failures`` reads it).
- ``open_read`` streams exactly the version an ObjectRef names, ``block`` bytes at a time;
  ``open_write`` commits the object only when its ``with`` block ends without an
  exception, and only if no object is there yet (create-only: GCS ``ifGenerationMatch=0``,
  S3 ``If-None-Match: *``, an exclusive link for files); a writer that finds the object
  already created gets AlreadyExists, with nothing of its own committed. ``create`` is the
  same for one small object (False: it was there). ``put`` creates or replaces (pointers).
  SDK errors pass through as they are, for store_errors to classify.
- ``exists`` is False only for "not found"; any other failure raises.
Cloud SDKs are imported on first use of their scheme (google.cloud.storage alone costs
~200 ms of import, which a function serving a local or https model should not pay).
"""

from __future__ import annotations

import hashlib
import io
import os
import queue
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from functions.loading.store_errors import is_lost_race

CHUNK = 1 << 20
WHOLE_BLOCK = 64 << 10
"""A written block at least this large is queued for hashing as it is (``_Digesting``)."""
Progress = Callable[[int], None]


class FetchError(Exception):
    """The object could not be read (missing, unauthorised, unreachable); ``http_status`` is
    the HTTP status that said so, when one did."""

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class AlreadyExists(FileExistsError):
    """A create-only write found the object there: another writer created it first."""


@dataclass(frozen=True)
class ObjectRef:
    """One version of one object. ``generation`` names the version in output names: the GCS
    generation, or for S3 the eTag (what a bucket listing shows too, so an event and the
    batch job name the same object's outputs alike; equal content, equal results)."""

    scheme: str
    bucket: str
    name: str
    generation: str | None = None
    version_id: str | None = None
    """S3 only: read exactly this version (None on unversioned buckets)."""

    @property
    def uri(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.name}"

    @classmethod
    def parse(cls, uri: str) -> ObjectRef:
        """The current version of the object at ``uri``."""
        scheme = urlparse(uri).scheme
        if scheme in ("", "file"):  # a local path: absolute, so ``uri`` names it again
            path = Path(urlparse(uri).path if scheme else uri).resolve()
            return cls("file", "", str(path).lstrip("/"))
        bucket, key = split_bucket_uri(uri)
        return cls(scheme, bucket, key)


@contextmanager
def create_only(uri: str) -> Iterator[None]:
    """Around a create-only commit: the store's "it exists" answer (412, FileExistsError)
    raised as AlreadyExists naming ``uri``."""
    try:
        yield
    except AlreadyExists:
        raise
    except Exception as exc:
        if is_lost_race(exc):
            raise AlreadyExists(f"{uri} exists: another writer created it first") from exc
        raise


def split_bucket_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ("bucket", "a/b")."""
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


class ObjectStore(ABC):
    """Objects of one scheme, addressed by URI."""

    scheme: str = ""

    def _download(self, uri: str, dest: Path) -> None:
        """Copy the object to ``dest`` (the caller makes it atomic and names errors): for a
        store whose ``_download_to`` cannot stream (each store implements one of the two)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither download")

    @abstractmethod
    def read_range(self, uri: str, start: int, length: int) -> bytes:
        """``length`` bytes of the object from offset ``start`` (fewer at its end)."""

    @abstractmethod
    def exists(self, uri: str) -> bool:
        """Whether the object exists now."""

    @abstractmethod
    def version(self, uri: str) -> str | None:
        """The current version's identity (generation, eTag, mtime); None when unknown."""

    @abstractmethod
    def open_read(self, ref: ObjectRef, block: int) -> IO[bytes]:
        """A binary stream over exactly the version ``ref`` names."""

    @abstractmethod
    def open_write(self, uri: str,
                   content_type: str = "application/x-ndjson") -> AbstractContextManager[IO[bytes]]:
        """A sink whose bytes become the object ``uri`` only if the block succeeds and no
        object is at ``uri`` by then; AlreadyExists (nothing of ours committed) if one is."""

    @abstractmethod
    def put(self, uri: str, data: bytes, content_type: str = "application/json") -> None:
        """Create or replace a small object in one request."""

    def create(self, uri: str, data: bytes, content_type: str = "application/json") -> bool:
        """Create a small object unless one is there already (then False, nothing written)."""
        try:
            with self.open_write(uri, content_type) as sink:
                sink.write(data)
        except AlreadyExists:
            return False
        return True

    @abstractmethod
    def upload_file(self, path: Path, uri: str, content_type: str,
                    progress: Progress | None = None) -> None:
        """Upload a local file that must not exist yet (create-only where the store can
        enforce it), calling ``progress(bytes)`` as it goes."""

    @abstractmethod
    def list_objects(self, prefix_uri: str) -> Iterator[ObjectRef]:
        """Every object under the prefix, with its version."""

    def _download_to(self, uri: str, sink: IO[bytes]) -> bool:
        """Write the object into ``sink`` front to back; False (nothing written) where the
        store cannot stream in order, and ``_download`` writes the file instead."""
        return False

    def fetch(self, uri: str, dest: Path) -> str:
        """Copy the object at ``uri`` to ``dest`` atomically (temp file + rename); the
        sha256 of what was written, hashed as the bytes arrive where the store streams in
        order (the digest then costs no pass over the file of its own)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
        tmp = Path(tmp_name)
        try:
            with open(fd, "wb") as fh:
                sink = _Digesting(fh, hashlib.sha256())
                try:
                    streamed = self._download_to(uri, sink)
                finally:
                    hexdigest = sink.hexdigest()
            if not streamed:
                self._download(uri, tmp)
            os.replace(tmp, dest)
            return hexdigest if streamed else sha256_file(dest)
        except FetchError:
            raise
        except Exception as exc:  # SDK errors differ per scheme; name the URI and the cause
            raise FetchError(f"cannot read {uri}: {type(exc).__name__}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def get(self, uri: str) -> bytes:
        """The whole object (for small things: model cards, pointers)."""
        with tempfile.TemporaryDirectory() as tmpdir:
            dest = Path(tmpdir) / "obj"
            self.fetch(uri, dest)
            return dest.read_bytes()


class _Digesting(io.RawIOBase):
    """A write-only file that hashes what passes through it, in a thread of its own a block
    behind the writes: hashlib lets go of the GIL on large blocks, so the hash runs while
    the next bytes arrive. ``hexdigest`` ends the thread."""

    def __init__(self, fh: IO[bytes], digest: Any) -> None:
        self.fh, self.digest, self.pending = fh, digest, bytearray()
        self.blocks: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self.thread = threading.Thread(target=self._hash, name="download-sha256", daemon=True)
        self.thread.start()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        written = self.fh.write(data)
        if isinstance(data, bytes) and len(data) >= WHOLE_BLOCK:  # immutable: hashed as it
            if self.pending:  # is, with no copy (two copies of 90 MB cost the download
                self.blocks.put(bytes(self.pending))  # more than the hash it overlaps)
                self.pending.clear()
            self.blocks.put(data)
            return written
        self.pending += data
        if len(self.pending) >= CHUNK:
            self.blocks.put(bytes(self.pending))
            self.pending.clear()
        return written

    def _hash(self) -> None:
        while (block := self.blocks.get()) is not None:
            self.digest.update(block)

    def hexdigest(self) -> str:
        """The digest of everything written; the thread has ended when it returns."""
        self.blocks.put(bytes(self.pending))
        self.blocks.put(None)
        self.thread.join()
        return self.digest.hexdigest()


def sha256_file(path: Path, progress: Progress | None = None) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
    return digest.hexdigest()
