"""Dedupe is exact: identical rows (bytewise) share one model row, distinct rows never do."""

import numpy as np

from functions import dedupe as dedupe_mod
from functions.dedupe import dedupe


def check(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    unique, inverse = dedupe(matrix)
    assert np.array_equal(unique[inverse].view(np.uint8), matrix.view(np.uint8))
    assert len({r.tobytes() for r in unique}) == len(unique)
    return unique, inverse


def test_duplicates_found_and_order_restored() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(50, 7)).astype(np.float32)
    matrix = base[rng.integers(0, 50, size=1000)]
    unique, _ = check(matrix)
    assert len(unique) == len(np.unique(matrix, axis=0))


def test_all_distinct_returns_the_matrix_itself_in_order() -> None:
    matrix = np.arange(40, dtype=np.float64).reshape(10, 4)
    unique, inverse = check(matrix)
    assert unique is matrix and inverse.tolist() == list(range(10))


def test_nan_rows_are_equal_by_bytes_and_odd_widths_work() -> None:
    matrix = np.array([[np.nan, 1, 2], [np.nan, 1, 2], [0.0, 1, 2]], dtype=np.float32)
    unique, inverse = check(matrix)
    assert len(unique) == 2 and inverse[0] == inverse[1]


def test_hash_collisions_fall_back_to_exact() -> None:
    # The row hash is linear in the row's 64-bit words: (a, b) and (a + m2, b - m1) collide.
    m1, m2 = (int(m) for m in dedupe_mod._MULTIPLIERS[:2])
    a, b = 1, 2
    twin = ((a + m2) % 2**64, (b - m1) % 2**64)
    matrix = np.array([[a, b], twin, [a, b], [5, 6]], dtype=np.uint64).view(np.int64)
    words = matrix.view(np.uint64)
    hashes = (words * dedupe_mod._MULTIPLIERS[:2]).sum(axis=1, dtype=np.uint64)
    assert hashes[0] == hashes[1]  # a real collision between different rows
    unique, inverse = check(matrix)
    assert len(unique) == 3 and inverse[0] == inverse[2]


def test_wide_rows_use_the_exact_path() -> None:
    matrix = np.zeros((6, 200), dtype=np.float32)
    matrix[::2, 5] = 1
    unique, _ = check(matrix)
    assert len(unique) == 2
