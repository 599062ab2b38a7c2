"""Cloud SDK clients, created once per process and only when first needed.

Emulators need no code here: google-cloud-storage switches to ``STORAGE_EMULATOR_HOST``
with anonymous credentials by itself, and boto3 honours ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def gcs_client() -> Any:
    """A google.cloud.storage Client (imported here, not at module load: ~200 ms)."""
    from google.cloud import storage

    return storage.Client()


@lru_cache(maxsize=1)
def s3_client() -> Any:
    """A boto3 S3 client (imported here, not at module load)."""
    import boto3

    return boto3.client("s3")


def _forget_clients() -> None:
    # A forked child must not share the parent's pooled connections (and sockets).
    gcs_client.cache_clear()
    s3_client.cache_clear()


os.register_at_fork(after_in_child=_forget_clients)
