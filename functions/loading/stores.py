"""The store for a URI: one ObjectStore per scheme per process, created on first use."""

from __future__ import annotations

from urllib.parse import urlparse

from functions.loading.object_store import ObjectStore


class Stores:
    """The store for each URI scheme, created on first use and kept for the process.

    ``retry_seconds`` bounds how long a cloud call is retried (STORAGE_RETRY_SECONDS):
    event handlers run under an acknowledgement deadline, and the platform redelivers.
    """

    def __init__(self, retry_seconds: float = 30.0, http_timeout: float = 60.0) -> None:
        self.retry_seconds = retry_seconds
        self.http_timeout = http_timeout
        self._by_scheme: dict[str, ObjectStore] = {}

    def for_uri(self, uri: str) -> ObjectStore:
        """The store for ``uri``. The first call per scheme imports the store and its SDK:
        the model loader makes it while fork is held off, because a fork in the middle of
        an import leaves a half-initialised module in the child's ``sys.modules``."""
        scheme = urlparse(uri).scheme
        scheme = scheme if scheme in ("gs", "s3", "http", "https") else "file"
        store = self._by_scheme.get(scheme)
        if store is None:
            store = self._by_scheme[scheme] = self._create(scheme)
        return store

    def _create(self, scheme: str) -> ObjectStore:
        if scheme == "gs":
            from functions.loading.gcs_store import GcsStore

            return GcsStore(self.retry_seconds)
        if scheme == "s3":
            from functions.loading.s3_store import S3Store

            return S3Store()
        if scheme in ("http", "https"):
            from functions.loading.http_store import HttpStore

            return HttpStore(self.http_timeout)
        from functions.loading.file_store import FileStore

        return FileStore()
