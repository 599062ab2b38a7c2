"""Getting a model version into memory, and keeping the process safe around fork.

    holder.py        ModelHolder: background load, readiness, swap, gunicorn fork safety
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
    sdk_clients.py   Cloud SDK clients, created on first use, forgotten after fork;
                     the modules network stores import up front (never mid-fork)
    fork_exit.py     lets a forked worker exit although onnxruntime was imported
"""

from functions.loading.artifacts import fetch_model, read_card
from functions.loading.holder import ModelHolder
from functions.loading.object_store import FetchError, ObjectRef, ObjectStore
from functions.loading.stores import Stores

__all__ = ["FetchError", "ModelHolder", "ObjectRef", "ObjectStore", "Stores", "fetch_model",
           "read_card"]
