"""Create-only uploads to gs:// and s3://, for ``publish``.

Uploads go through the serving side's object stores (``functions.loading``: SDKs imported
on first use, pointed at emulators by ``STORAGE_EMULATOR_HOST`` / ``AWS_ENDPOINT_URL``).
They never replace an object: ``exists`` is checked first, and GCS also uploads with
``if_generation_match=0`` (the emulator ignores preconditions; real GCS enforces them).
Large files report progress as they go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from functions.loading.object_store import ObjectStore
from functions.loading.stores import Stores
from model_export.exit_codes import ExportError, InputError
from model_export.progress import ProgressBar


def open_bucket(uri: str) -> tuple[ObjectStore, str]:
    """(store, ``scheme://bucket/prefix`` without a trailing slash) for a --to URI."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("gs", "s3") or not parsed.netloc:
        raise InputError(f"--to {uri}: expected gs://BUCKET[/PREFIX] or s3://BUCKET[/PREFIX]")
    root = f"{parsed.scheme}://{parsed.netloc}"
    prefix = parsed.path.strip("/")
    return Stores().for_uri(uri), f"{root}/{prefix}" if prefix else root


def upload(store: ObjectStore, path: Path, uri: str, content_type: str, quiet: bool) -> None:
    """Upload ``path`` to ``uri`` with a progress bar (unless ``quiet``)."""
    with ProgressBar(f"uploading {path.name}", path.stat().st_size, "B", quiet=quiet) as bar:
        store.upload_file(path, uri, content_type, bar.advance)


def sdk_error(uri: str, exc: Exception) -> ExportError:
    """An SDK failure (auth, missing bucket, network) as one line naming the URI."""
    detail: Any = getattr(exc, "message", None) or str(exc)
    return ExportError(f"cannot write to {uri}: {type(exc).__name__}: {detail}")
