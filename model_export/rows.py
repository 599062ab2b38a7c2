"""Sample rows: read from a file, or drawn from what the card says about the inputs.

Files: ``.csv`` with a header (columns picked by the card's feature names when it has
them; ``target`` names the held-out label/value column), ``.npy`` (rows only) and ``.npz``
(arrays ``X`` and optionally ``y``). Drawn rows are uniform within the card's
``feature_ranges``, or standard normal when the card has none.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from functions.card import ModelCard
from model_export.errors import InputError


@dataclass(frozen=True)
class Rows:
    """Input rows ``X`` (float32, [N, ...]) and optional targets ``y`` ([N]); ``origin`` says
    where they came from, for the reports."""

    X: np.ndarray
    y: np.ndarray | None
    origin: str


def load(path: Path, feature_names: list[str] | None = None, target: str | None = None) -> Rows:
    """Read rows from ``path`` (see module docstring); InputError on anything unusable."""
    if not path.is_file():
        raise InputError(f"{path}: no such rows file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            X, y = _load_csv(path, feature_names or [], target)
        elif suffix == ".npy":
            X, y = np.load(path, allow_pickle=False), None
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                X, y = data["X"], data.get("y")
        else:
            raise InputError(f"{path}: rows must be .csv, .npy or .npz, not '{suffix}'")
        X = np.asarray(X, dtype=np.float32)
    except (ValueError, KeyError, OSError) as exc:
        raise InputError(f"{path}: cannot read rows: {exc}") from exc
    if X.ndim < 2 or len(X) == 0:
        raise InputError(f"{path}: expected a non-empty 2-D table of rows, got shape {X.shape}")
    return Rows(X, y, f"file {path.name}")


def _load_csv(path: Path, feature_names: list[str],
              target: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        body = [r for r in reader if r]
    if header is None:
        raise InputError(f"{path}: empty CSV")
    if target is not None and target not in header:
        raise InputError(f"{path}: no target column {target!r} (columns: {', '.join(header)})")
    if feature_names and all(f in header for f in feature_names):
        cols = [header.index(f) for f in feature_names]
    else:
        cols = [i for i, h in enumerate(header) if h != target]
    X = np.array([[float(r[i]) for i in cols] for r in body], dtype=np.float32)
    y = None
    if target is not None:
        raw = [r[header.index(target)] for r in body]
        y = _numeric_or_str(raw)
    return X, y


def _numeric_or_str(values: list[str]) -> np.ndarray:
    try:
        return np.array([float(v) for v in values])
    except ValueError:
        return np.array(values)


def draw(card: ModelCard, n: int, seed: int = 0) -> Rows:
    """``n`` rows for the card's (single) input, uniform within ``feature_ranges`` if any."""
    if not card.inputs:
        raise InputError(f"card of {card.name} lists no inputs to draw rows for")
    shape = [d if isinstance(d, int) else 1 for d in card.inputs[0].shape[1:]]
    rng = np.random.default_rng(seed)
    names = card.feature_names
    ranges = card.feature_ranges or {}
    if len(shape) == 1 and names and all(f in ranges for f in names):
        lo = np.array([ranges[f][0] for f in names], dtype=np.float64)
        hi = np.array([ranges[f][1] for f in names], dtype=np.float64)
        X = rng.uniform(lo, hi, size=(n, len(names)))
        return Rows(X.astype(np.float32), None, f"{n} rows drawn from feature_ranges")
    X = rng.standard_normal(size=(n, *shape))
    return Rows(X.astype(np.float32), None, f"{n} rows drawn from N(0, 1)")


def feature_ranges(X: np.ndarray, names: list[str]) -> dict[str, tuple[float, float]] | None:
    """Observed [min, max] per named feature of a 2-D table (None when not tabular)."""
    if X.ndim != 2 or len(names) != X.shape[1]:
        return None
    lo, hi = X.min(axis=0), X.max(axis=0)
    return {f: (float(a), float(b)) for f, a, b in zip(names, lo, hi, strict=True)}
