"""Cloud Storage (gs://) objects through google-cloud-storage.

The client comes from ``sdk_clients`` (one per process, forgotten in a forked child); the
emulator is honoured by the SDK itself (STORAGE_EMULATOR_HOST). Every call retries for at
most ``retry_seconds``: a push subscription's ack deadline runs while we retry, and the
platform redelivers anyway; the model load retries the whole load itself, saying why on
/readyz meanwhile (loading/holder.py). Creating writes carry ``ifGenerationMatch=0``
(real GCS refuses them with 412 when the object exists; gcp-storage-emulator ignores the
parameter). A retried create whose first try did commit meets its own object: counted as
created by another writer, which is the same outcome.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from functions.loading.object_store import (
    CHUNK,
    ObjectRef,
    ObjectStore,
    Progress,
    create_only,
    split_bucket_uri,
)
from functions.loading.sdk_clients import NETWORK_MODULES, gcs_client, import_now

UPLOAD_BLOCK = 1 << 20  # resumable chunks must be multiples of 256 KiB


class _Counting(io.RawIOBase):
    """A read-only file that reports progress as the SDK reads it."""

    def __init__(self, fh: IO[bytes], progress: Progress) -> None:
        self.fh, self.progress = fh, progress

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.progress(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fh.seek(offset, whence)

    def tell(self) -> int:
        return self.fh.tell()


def _read_in_blocks() -> None:
    """Make the SDK read a download's body CHUNK bytes at a time, not 8 KiB: its loop
    costs a pass of Python per block (more CPU than the transfer itself, and the GIL the
    rest of the process needs). The same bytes, checksums and retries (resumed from the
    bytes written); one block in memory. An SDK without the constant keeps its own."""
    try:
        from google.cloud.storage._media.requests import _request_helpers as helpers
    except ImportError:
        return
    if getattr(helpers, "_SINGLE_GET_CHUNK_SIZE", CHUNK) < CHUNK:
        helpers._SINGLE_GET_CHUNK_SIZE = CHUNK


class GcsStore(ObjectStore):
    scheme = "gs"

    def __init__(self, retry_seconds: float = 30.0) -> None:
        # the SDK, and the checksum it computes while downloading (see import_now)
        import_now("google.cloud.storage", "google_crc32c", *NETWORK_MODULES)
        _read_in_blocks()
        self.retry_seconds = retry_seconds

    def _retry(self) -> Any:
        from google.cloud.storage.retry import DEFAULT_RETRY

        return DEFAULT_RETRY.with_timeout(self.retry_seconds)

    @staticmethod
    def _blob(uri: str, generation: int | None = None) -> Any:
        bucket, key = split_bucket_uri(uri)
        return gcs_client().bucket(bucket).blob(key, generation=generation)

    def _download_to(self, uri: str, sink: IO[bytes]) -> bool:
        self._blob(uri).download_to_file(sink, retry=self._retry())  # in order, even retried
        return True

    def read_range(self, uri: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        return self._blob(uri).download_as_bytes(start=start, end=start + length - 1,
                                                 retry=self._retry())

    def exists(self, uri: str) -> bool:
        return bool(self._blob(uri).exists(retry=self._retry()))

    def version(self, uri: str) -> str | None:
        blob = self._blob(uri)
        blob.reload(retry=self._retry())
        return str(blob.generation) if blob.generation is not None else None

    def open_read(self, ref: ObjectRef, block: int) -> IO[bytes]:
        generation = int(ref.generation) if ref.generation and ref.generation.isdigit() else None
        blob = self._blob(ref.uri, generation)
        blob.reload(retry=self._retry())  # fail here, before any output opens, if it is gone
        return blob.open("rb", chunk_size=block, retry=self._retry())

    @contextmanager
    def open_write(self, uri: str,
                   content_type: str = "application/x-ndjson") -> Iterator[IO[bytes]]:
        writer = self._blob(uri).open("wb", chunk_size=UPLOAD_BLOCK, content_type=content_type,
                                      ignore_flush=True, if_generation_match=0,
                                      retry=self._retry())
        with create_only(uri):  # a 412 when the upload starts (a chunk in) or commits
            try:
                yield writer
                writer.close()  # the last chunk commits the object
            except BaseException:
                # cancels the resumable upload: nothing committed. Also after a failed
                # close, which leaves the writer open: its finalizer would close it again,
                # starting the upload anew from whichever thread collects it
                writer.terminate()
                raise

    def put(self, uri: str, data: bytes, content_type: str = "application/json") -> None:
        self._blob(uri).upload_from_string(data, content_type=content_type, retry=self._retry())

    def create(self, uri: str, data: bytes, content_type: str = "application/json") -> bool:
        try:
            with create_only(uri):
                self._blob(uri).upload_from_string(data, content_type=content_type,
                                                   if_generation_match=0, retry=self._retry())
        except FileExistsError:
            return False
        return True

    def upload_file(self, path: Path, uri: str, content_type: str,
                    progress: Progress | None = None) -> None:
        bucket, key = split_bucket_uri(uri)
        blob = gcs_client().bucket(bucket).blob(key, chunk_size=8 << 20)  # resumable: progress
        size = path.stat().st_size
        with open(path, "rb") as fh:
            source: Any = _Counting(fh, progress) if progress else fh
            blob.upload_from_file(source, size=size, content_type=content_type,
                                  if_generation_match=0)

    def list_objects(self, prefix_uri: str) -> Iterator[ObjectRef]:
        bucket, prefix = split_bucket_uri(prefix_uri)
        for blob in gcs_client().list_blobs(bucket, prefix=prefix, retry=self._retry()):
            yield ObjectRef("gs", bucket, blob.name, str(blob.generation))
