"""Identical rows computed once: ``dedupe`` finds them, ``inverse`` puts answers back.

Rows are compared byte for byte (so NaN equals NaN and -0.0 differs from 0.0; both are
safe: the second only costs one extra row). A 64-bit hash of each row is sorted instead
of the rows themselves, and the result is verified against the bytes; on a collision the
exact (slower) row sort decides.
"""

from __future__ import annotations

import numpy as np

# 64 odd multipliers from the golden-ratio sequence (no RNG: numpy.random costs import time)
_MULTIPLIERS = (np.arange(1, 65, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)


_IDENTITY = np.zeros(1, dtype=np.intp)
_IDENTITY.flags.writeable = False


def _row_words(matrix: np.ndarray) -> np.ndarray:
    """Rows as (n, k) uint64 words (zero-padded bytes)."""
    raw = np.ascontiguousarray(matrix).view(np.uint8).reshape(len(matrix), -1)
    pad = (-raw.shape[1]) % 8
    if pad:
        raw = np.pad(raw, ((0, 0), (0, pad)))
    return np.ascontiguousarray(raw).view(np.uint64)


def _exact(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = np.ascontiguousarray(matrix)
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def unique_rows(matrix: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """(first index of each distinct row, inverse); first is None when all rows differ
    (the inverse is then the identity)."""
    n = len(matrix)
    if n < 2:
        return None, np.zeros(n, dtype=np.intp)
    words = _row_words(matrix)
    if words.shape[1] <= len(_MULTIPLIERS):
        hashes = words @ _MULTIPLIERS[: words.shape[1]]  # wraps modulo 2**64, as meant
        ordered = np.sort(hashes)  # distinct hashes mean distinct rows: the common case
        if not (ordered[1:] == ordered[:-1]).any():  # ends here, without unique's argsort
            return None, np.arange(n)
        _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
        if not np.array_equal(words[first][inverse], words):  # a hash collision
            first, inverse = _exact(matrix)
    else:  # very wide rows: sort the bytes themselves
        first, inverse = _exact(matrix)
        if len(first) == n:
            return None, np.arange(n)
    return first, inverse.reshape(-1)


def dedupe(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique rows, inverse) with ``unique[inverse]`` equal to ``matrix`` row for row.

    When every row is distinct the matrix itself comes back with an identity inverse, so
    callers keep request order at no cost.
    """
    first, inverse = unique_rows(matrix)
    return (matrix if first is None else np.ascontiguousarray(matrix)[first]), inverse


def _object_keys(arrays: list[np.ndarray], n: int) -> tuple[np.ndarray | None, np.ndarray]:
    """``unique_rows`` for feeds holding strings: rows compared as Python tuples."""
    columns = [[tuple(r) for r in a.reshape(n, -1).tolist()] if a.dtype == object
               else [r.tobytes() for r in a.reshape(n, -1)] for a in arrays]
    seen: dict[tuple, int] = {}
    first: list[int] = []
    inverse = np.empty(n, dtype=np.intp)
    for i, key in enumerate(zip(*columns)):
        j = seen.setdefault(key, len(first))
        if j == len(first):
            first.append(i)
        inverse[i] = j
    return (None if len(first) == n else np.asarray(first, dtype=np.intp)), inverse


def dedupe_feeds(feeds: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(unique feeds, inverse): rows identical in every input are computed once. Feeds
    without one shared batch axis (Open Inference Protocol tensors may differ) come back
    whole."""
    arrays = list(feeds.values())
    if any(a.ndim == 0 for a in arrays):  # a scalar input: no batch axis to dedupe along
        return feeds, np.arange(1)
    n = len(arrays[0])
    if n < 2:  # one row (a single prediction): nothing to compare
        return feeds, _IDENTITY[:n]
    if any(len(a) != n for a in arrays):  # tensors without a shared batch axis
        return feeds, np.arange(n)
    if len(arrays) == 1 and arrays[0].ndim == 2 and arrays[0].dtype != object:
        first, inverse = unique_rows(arrays[0])
    elif any(a.dtype == object for a in arrays):
        first, inverse = _object_keys(arrays, n)
    else:
        combined = np.hstack([np.ascontiguousarray(a).reshape(n, -1).view(np.uint8)
                              for a in arrays])
        first, inverse = unique_rows(combined)
    if first is None:
        return feeds, inverse
    return {name: a[first] for name, a in feeds.items()}, inverse
