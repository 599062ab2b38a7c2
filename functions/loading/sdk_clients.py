"""Cloud SDK clients, created once per process and only when first needed; the modules the
network stores import up front.

Emulators need no code here: google-cloud-storage switches to ``STORAGE_EMULATOR_HOST``
with anonymous credentials by itself, and boto3 honours ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import importlib
import os
from functools import lru_cache
from typing import Any

NETWORK_MODULES = ("encodings.idna", "stringprep", "unicodedata", "netrc", "shlex")
"""Modules HTTP clients import on their first call (host names go through the idna codec,
requests reads ~/.netrc)."""


def import_now(*modules: str) -> None:
    """Import ``modules`` now. A store calls it when created, which the model loader does
    while fork is held off: a fork in the middle of an import leaves that module's lock
    held in the child, whose own first fetch would then wait on it forever."""
    for name in modules:
        importlib.import_module(name)


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
