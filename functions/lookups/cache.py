"""The bounded cache of looked-up feature values, built on ``functools.lru_cache``.

Contract:
- ``get(key)`` returns the stored values or None; it never reaches the network.
- ``put(key, values)`` stores a successful lookup. Failures are never put, so they are
  never cached: the next request asks the service again.
- Size is bounded (``maxsize`` entries, least recently used evicted first).
- With ``ttl > 0`` an entry lives at most ``ttl`` seconds: the current time bucket
  (``clock() // ttl``) is part of the cache key, so an entry from an older bucket is
  simply never asked for again and ages out of the LRU.

Why lru_cache is the store rather than wrapping the fetch itself: the event loop must know
hits from misses *before* it schedules work, so hits cost no thread hop and misses can be
fetched together. The wrapped function therefore only returns the value being inserted
right now; asking for an absent key raises ``_Miss``, which lru_cache does not remember.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from functools import lru_cache

Values = dict[str, float]


class _Miss(Exception):
    """Raised inside the cached function for a key that is not stored (never cached)."""


class LookupCache:
    """lru_cache-backed store of ``key -> feature values`` with an optional time-to-live."""

    def __init__(self, maxsize: int, ttl: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._incoming: dict[tuple[Hashable, int], Values] = {}
        # One lock: get/put may be called from more than one event loop (adapters).
        self._lock = threading.Lock()
        self._store = lru_cache(maxsize=max(1, maxsize))(self._insert)

    def _insert(self, key: Hashable, bucket: int) -> Values:
        try:
            return self._incoming[(key, bucket)]
        except KeyError:
            raise _Miss from None

    def _bucket(self) -> int:
        return int(self._clock() // self.ttl) if self.ttl > 0 else 0

    def get(self, key: Hashable) -> Values | None:
        """The cached values for ``key`` in the current time bucket, or None."""
        with self._lock:
            try:
                return self._store(key, self._bucket())
            except _Miss:
                return None

    def put(self, key: Hashable, values: Values) -> None:
        """Remember a successful lookup (replacing nothing: first writer wins per bucket)."""
        bucket = self._bucket()
        with self._lock:
            self._incoming[(key, bucket)] = values
            try:
                self._store(key, bucket)
            finally:
                del self._incoming[(key, bucket)]

    def size(self) -> int:
        """Entries held now (including ones from expired buckets not yet evicted)."""
        return self._store.cache_info().currsize

