"""Create-only uploads to gs:// and s3://, for ``publish``.

The SDK clients are the serving side's (``functions.clients``: imported on first use, and
pointed at emulators by ``STORAGE_EMULATOR_HOST`` / ``AWS_ENDPOINT_URL``). Uploads never
replace an object: ``exists`` is checked first, and GCS also sends
``if_generation_match=0`` (the emulator ignores preconditions; real GCS enforces them).
Large files report progress as they go.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from model_export.errors import ExportError, InputError
from model_export.progress import Progress


class Bucket(Protocol):
    name: str

    def exists(self, key: str) -> bool: ...

    def upload(self, path: Path, key: str, content_type: str, quiet: bool) -> None: ...


def open_bucket(uri: str) -> tuple[Bucket, str]:
    """(bucket, key prefix) for ``gs://bucket/prefix`` or ``s3://bucket/prefix``."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("gs", "s3") or not parsed.netloc:
        raise InputError(f"--to {uri}: expected gs://BUCKET[/PREFIX] or s3://BUCKET[/PREFIX]")
    prefix = parsed.path.strip("/")
    bucket = GcsBucket(parsed.netloc) if parsed.scheme == "gs" else S3Bucket(parsed.netloc)
    return bucket, prefix


class _Counting(io.RawIOBase):
    """A read-only file that advances a progress bar as the SDK reads it."""

    def __init__(self, fh: io.BufferedReader, bar: Progress) -> None:
        self.fh, self.bar = fh, bar

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.bar.advance(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fh.seek(offset, whence)

    def tell(self) -> int:
        return self.fh.tell()


class GcsBucket:
    def __init__(self, name: str) -> None:
        from functions.clients import gcs_client

        self.name = name
        self.bucket = gcs_client().bucket(name)

    def exists(self, key: str) -> bool:
        return bool(self.bucket.blob(key).exists())

    def upload(self, path: Path, key: str, content_type: str, quiet: bool) -> None:
        blob = self.bucket.blob(key, chunk_size=8 << 20)  # resumable, so progress moves
        size = path.stat().st_size
        with open(path, "rb") as fh, Progress(f"uploading {path.name}", size, "B",
                                              quiet=quiet) as bar:
            blob.upload_from_file(_Counting(fh, bar), size=size, content_type=content_type,
                                  if_generation_match=0)


class S3Bucket:
    def __init__(self, name: str) -> None:
        from functions.clients import s3_client

        self.name = name
        self.client = s3_client()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.name, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def upload(self, path: Path, key: str, content_type: str, quiet: bool) -> None:
        with Progress(f"uploading {path.name}", path.stat().st_size, "B", quiet=quiet) as bar:
            self.client.upload_file(str(path), self.name, key, Callback=bar.advance,
                                    ExtraArgs={"ContentType": content_type})


def sdk_error(uri: str, exc: Exception) -> ExportError:
    """An SDK failure (auth, missing bucket, network) as one line naming the URI."""
    detail: Any = getattr(exc, "message", None) or str(exc)
    return ExportError(f"cannot write to {uri}: {type(exc).__name__}: {detail}")
