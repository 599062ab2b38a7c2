"""Streaming reads and writes of bucket objects (gs:// and s3://) for event handlers.

Memory stays bounded by a block size, never by the object size: reads go through the SDK's
ranged readers, GCS writes through a resumable upload (committed only when the ``with``
block ends without an exception: a failed run leaves no half-written output), S3 writes
through a spooled temp file uploaded at the end. SDKs are imported lazily, as in
``functions.storage``; emulators are honoured the same way (STORAGE_EMULATOR_HOST,
AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from functions.clients import gcs_client, s3_client
from functions.events.envelopes import ObjectRef
from functions.events.failures import Poison, is_missing, is_transient, s3_code
from functions.settings import get_settings
from functions.storage import split_bucket_uri

UPLOAD_BLOCK = 1 << 20  # GCS resumable chunks must be multiples of 256 KiB
SPOOL_BYTES = 8 << 20


def _retry() -> Any:
    """GCS retry policy for event handlers: short, because the platform redelivers anyway
    and a push subscription's ack deadline runs while we retry."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(get_settings().storage_retry_seconds)


def _scheme(uri: str) -> str:
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme not in ("gs", "s3"):
        raise ValueError(f"{uri}: only gs:// and s3:// objects are supported here")
    return scheme


def _open(ref: ObjectRef, block: int) -> IO[bytes]:
    if _scheme(ref.uri) == "gs":
        generation = int(ref.generation) if ref.generation and ref.generation.isdigit() else None
        blob = gcs_client().bucket(ref.bucket).blob(ref.name, generation=generation)
        blob.reload(retry=_retry())  # fail here, before any output opens, if it is gone
        return blob.open("rb", chunk_size=block, retry=_retry())
    kwargs = {"VersionId": ref.version_id} if ref.version_id else {}
    return s3_client().get_object(Bucket=ref.bucket, Key=ref.name, **kwargs)["Body"]


@contextmanager
def open_read(ref: ObjectRef, block: int) -> Iterator[IO[bytes]]:
    """A binary stream over exactly the version ``ref`` names, fetched ``block`` bytes at a time.

    An object that does not exist (deleted since the event, a wrong URI in a message) or
    may not be read is Poison: redelivering the event cannot make it appear.
    """
    try:
        stream = _open(ref, block)
    except Exception as exc:
        if is_missing(exc) and not is_transient(exc):
            raise Poison(f"{ref.uri} does not exist or may not be read: {exc}") from exc
        raise
    try:
        yield stream
    finally:
        stream.close()


@contextmanager
def open_write(uri: str, content_type: str = "application/x-ndjson") -> Iterator[IO[bytes]]:
    """A binary sink whose bytes become the object ``uri`` only if the block succeeds."""
    bucket, key = split_bucket_uri(uri)
    if _scheme(uri) == "gs":
        blob = gcs_client().bucket(bucket).blob(key)
        # BlobWriter.__exit__ cancels the resumable upload on an exception: nothing is committed
        with blob.open("wb", chunk_size=UPLOAD_BLOCK, content_type=content_type,
                       ignore_flush=True, retry=_retry()) as sink:
            yield sink
        return
    with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as spool:
        yield spool  # type: ignore[misc]
        spool.seek(0)
        s3_client().upload_fileobj(spool, bucket, key, ExtraArgs={"ContentType": content_type})


def write_bytes(uri: str, data: bytes, content_type: str = "application/json") -> None:
    """Create or replace a small object in one request."""
    bucket, key = split_bucket_uri(uri)
    if _scheme(uri) == "gs":
        blob = gcs_client().bucket(bucket).blob(key)
        blob.upload_from_string(data, content_type=content_type, retry=_retry())
    else:
        s3_client().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)


def exists(uri: str) -> bool:
    """Whether the object exists now."""
    bucket, key = split_bucket_uri(uri)
    if _scheme(uri) == "gs":
        return bool(gcs_client().bucket(bucket).blob(key).exists(retry=_retry()))
    try:
        s3_client().head_object(Bucket=bucket, Key=key)
    except Exception as exc:  # botocore ClientError: only "not found" means False
        if s3_code(exc) in ("404", "NoSuchKey"):
            return False
        raise
    return True


def list_objects(prefix_uri: str) -> Iterator[ObjectRef]:
    """Every object under ``gs://bucket/prefix`` or ``s3://bucket/prefix``, with its version."""
    bucket, prefix = split_bucket_uri(prefix_uri)
    if _scheme(prefix_uri) == "gs":
        for blob in gcs_client().list_blobs(bucket, prefix=prefix, retry=_retry()):
            yield ObjectRef("gs", bucket, blob.name, str(blob.generation))
        return
    pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for item in page.get("Contents", []):
            yield ObjectRef("s3", bucket, item["Key"], str(item.get("ETag", "")).strip('"') or None)
