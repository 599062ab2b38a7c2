"""Read objects by URI: gs://, s3://, http(s):// and local paths.

Cloud SDKs are imported only when their scheme is used: google.cloud.storage alone costs
~200 ms of import, which a function serving a local or https model should not pay.
Emulators are honoured the way the SDKs document it: ``STORAGE_EMULATOR_HOST`` for GCS
(read by google-cloud-storage itself) and ``AWS_ENDPOINT_URL`` for boto3.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

CHUNK = 1 << 20


class FetchError(Exception):
    """The object could not be read (missing, unauthorised, unreachable)."""


def split_bucket_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ("bucket", "a/b")."""
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def _gcs_blob(uri: str):  # type: ignore[no-untyped-def]
    from functions.clients import gcs_client  # lazy: heavy import

    bucket, key = split_bucket_uri(uri)
    return gcs_client().bucket(bucket).blob(key)


def _s3_fetch(uri: str, dest: Path) -> None:
    from functions.clients import s3_client  # lazy: heavy import

    bucket, key = split_bucket_uri(uri)
    s3_client().download_file(bucket, key, str(dest))


def _http_fetch(uri: str, dest: Path, timeout: float) -> None:
    import requests

    with requests.get(uri, stream=True, timeout=timeout) as resp:
        if resp.status_code != 200:
            raise FetchError(f"GET {uri} answered HTTP {resp.status_code}")
        with open(dest, "wb") as out:
            for chunk in resp.iter_content(CHUNK):
                out.write(chunk)


def download(uri: str, dest: Path, timeout: float = 60.0) -> None:
    """Copy the object at ``uri`` to ``dest`` atomically (temp file + rename)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        scheme = urlparse(uri).scheme
        if scheme == "gs":
            _gcs_blob(uri).download_to_filename(str(tmp))
        elif scheme == "s3":
            _s3_fetch(uri, tmp)
        elif scheme in ("http", "https"):
            _http_fetch(uri, tmp, timeout)
        else:
            shutil.copyfile(local_path(uri), tmp)
        os.replace(tmp, dest)
    except FetchError:
        raise
    except Exception as exc:  # SDK errors differ per scheme; name the URI and the cause
        raise FetchError(f"cannot read {uri}: {type(exc).__name__}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def read_bytes(uri: str, timeout: float = 30.0) -> bytes:
    """The whole object (for small things: model cards, pointers)."""
    scheme = urlparse(uri).scheme
    if scheme in ("", "file"):
        try:
            return local_path(uri).read_bytes()
        except OSError as exc:
            raise FetchError(f"cannot read {uri}: {exc}") from exc
    with tempfile.TemporaryDirectory() as tmpdir:
        dest = Path(tmpdir) / "obj"
        download(uri, dest, timeout)
        return dest.read_bytes()


def local_path(uri: str) -> Path:
    """A ``file://`` URI or plain path as a Path."""
    return Path(urlparse(uri).path if uri.startswith("file://") else uri)


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
    return digest.hexdigest()
