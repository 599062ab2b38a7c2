"""Getting a model version into memory, and keeping the process safe around fork.

    holder.py        ModelHolder: background load, readiness, swap, gunicorn fork safety
    early_fetch.py   the model's files fetched from main.py's first line, while it imports
    load_retry.py    a failed load: retried with backoff (transient) or never (permanent)
    artifacts.py     read_card, fetch_model: card, download, sha256 check, local cache
    sidecars.py      files beside a model (a text model's tokenizer), verified and cached
    cache_lock.py    the cache entry's lock across processes, never inherited by a fork
    pointer.py       models/NAME/LATEST: which version a cold start loads
    object_store.py  ObjectStore, the one interface to object storage; ObjectRef;
                     create-only writes (AlreadyExists)
    store_errors.py  what an SDK error means: transient, missing, a lost create race
    stores.py        Stores: the store for a URI (one per scheme per process)
    gcs_store.py     gs://          s3_store.py   s3://
    http_store.py    http(s)://     file_store.py local paths and file://
    sdk_clients.py   Cloud SDK clients, created on first use, closed before a fork,
                     forgotten after it; the modules network stores import up front
    fork_exit.py     lets a forked worker exit although onnxruntime was imported
    exit_wait.py     interpreter exit waits (bounded) for loads still in onnxruntime

The names below are imported on first use: importing one module of this package (the
early fetch, at main.py's first line) must not import the others (the holder brings
onnxruntime).
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"fetch_model": "artifacts", "read_card": "artifacts", "ModelHolder": "holder",
          "FetchError": "object_store", "ObjectRef": "object_store",
          "ObjectStore": "object_store", "Stores": "stores"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
