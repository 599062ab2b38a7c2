"""Amazon S3 (s3://) objects through boto3 (AWS_ENDPOINT_URL points it at moto or MinIO).

Writes spool to a temporary file (memory up to SPOOL_BYTES, then disk) and upload when the
``with`` block succeeds, so a failed run leaves no partial object.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from functions.loading.object_store import ObjectRef, ObjectStore, Progress, split_bucket_uri
from functions.loading.sdk_clients import NETWORK_MODULES, import_now, s3_client

SPOOL_BYTES = 8 << 20
NOT_FOUND = ("404", "NoSuchKey", "NotFound")


def s3_code(exc: BaseException) -> str:
    """The error code of a botocore ClientError ("404", "NoSuchKey", ...), else ""."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


class S3Store(ObjectStore):
    scheme = "s3"

    def __init__(self) -> None:
        # the SDK and what its client and download_file import on first use (see import_now)
        import_now("boto3", "boto3.s3.inject", "boto3.s3.transfer", "s3transfer.subscribers",
                   *NETWORK_MODULES)

    def _download(self, uri: str, dest: Path) -> None:
        bucket, key = split_bucket_uri(uri)
        s3_client().download_file(bucket, key, str(dest))

    def read_range(self, uri: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        bucket, key = split_bucket_uri(uri)
        body = s3_client().get_object(Bucket=bucket, Key=key,
                                      Range=f"bytes={start}-{start + length - 1}")["Body"]
        return body.read()

    def _head(self, uri: str) -> dict | None:
        bucket, key = split_bucket_uri(uri)
        try:
            return s3_client().head_object(Bucket=bucket, Key=key)
        except Exception as exc:  # botocore ClientError: only "not found" means absent
            if s3_code(exc) in NOT_FOUND:
                return None
            raise

    def exists(self, uri: str) -> bool:
        return self._head(uri) is not None

    def version(self, uri: str) -> str | None:
        head = self._head(uri)
        return str(head.get("ETag", "")).strip('"') or None if head else None

    def open_read(self, ref: ObjectRef, block: int) -> IO[bytes]:
        kwargs = {"VersionId": ref.version_id} if ref.version_id else {}
        return s3_client().get_object(Bucket=ref.bucket, Key=ref.name, **kwargs)["Body"]

    @contextmanager
    def open_write(self, uri: str,
                   content_type: str = "application/x-ndjson") -> Iterator[IO[bytes]]:
        bucket, key = split_bucket_uri(uri)
        with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as spool:
            yield spool  # type: ignore[misc]
            spool.seek(0)
            s3_client().upload_fileobj(spool, bucket, key, ExtraArgs={"ContentType": content_type})

    def put(self, uri: str, data: bytes, content_type: str = "application/json") -> None:
        bucket, key = split_bucket_uri(uri)
        s3_client().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)

    def upload_file(self, path: Path, uri: str, content_type: str,
                    progress: Progress | None = None) -> None:
        bucket, key = split_bucket_uri(uri)
        s3_client().upload_file(str(path), bucket, key, Callback=progress,
                                ExtraArgs={"ContentType": content_type})

    def list_objects(self, prefix_uri: str) -> Iterator[ObjectRef]:
        bucket, prefix = split_bucket_uri(prefix_uri)
        pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                etag = str(item.get("ETag", "")).strip('"') or None
                yield ObjectRef("s3", bucket, item["Key"], etag)
