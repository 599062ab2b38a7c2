"""Amazon S3 (s3://) objects through boto3 (AWS_ENDPOINT_URL points it at moto or MinIO).

Writes spool to a temporary file (memory up to SPOOL_BYTES, then disk) and upload when the
``with`` block succeeds, so a failed run leaves no partial object. They create only:
``If-None-Match: *`` on PutObject, or on CompleteMultipartUpload past PART_BYTES (boto3's
managed transfers do not pass that header on); S3 answers 412 when the key exists, or 409
ConditionalRequestConflict to a write racing another (transient: the event comes back).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from functions.loading.object_store import (
    ObjectRef,
    ObjectStore,
    Progress,
    create_only,
    split_bucket_uri,
)
from functions.loading.sdk_clients import NETWORK_MODULES, import_now, s3_client
from functions.loading.store_errors import s3_code

SPOOL_BYTES = 8 << 20
NOT_FOUND = ("404", "NoSuchKey", "NotFound")


class S3Store(ObjectStore):
    scheme = "s3"
    PART_BYTES = 64 << 20
    """Larger objects go up in parts of this size (S3's least part is 5 MiB)."""

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
            size = spool.seek(0, 2)
            spool.seek(0)
            with create_only(uri):
                if size <= self.PART_BYTES:
                    s3_client().put_object(Bucket=bucket, Key=key, Body=spool,
                                           ContentType=content_type, IfNoneMatch="*")
                else:
                    self._create_in_parts(bucket, key, spool, content_type)

    def _create_in_parts(self, bucket: str, key: str, source: IO[bytes],
                         content_type: str) -> None:
        """A multipart upload that commits only if ``key`` does not exist by then."""
        client = s3_client()
        upload_id = client.create_multipart_upload(Bucket=bucket, Key=key,
                                                   ContentType=content_type)["UploadId"]
        try:
            parts = []
            while chunk := source.read(self.PART_BYTES):
                number = len(parts) + 1
                etag = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id,
                                          PartNumber=number, Body=chunk)["ETag"]
                parts.append({"PartNumber": number, "ETag": etag})
            client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                             MultipartUpload={"Parts": parts}, IfNoneMatch="*")
        except BaseException:
            with suppress(Exception):  # the parts expire by lifecycle rule if this fails
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise

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
