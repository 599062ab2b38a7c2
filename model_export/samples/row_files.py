"""Sample rows: one array per graph input ("feeds"), read from a file or drawn from the card.

Files: ``.csv`` with a header (numeric columns picked by the card's feature names when it
has them, or the text column of a string / tokenizer model; ``target`` names the held-out
label/value column), ``.txt`` (one text per line, for string-input and tokenizer models),
``.npy`` (the one input's rows) and ``.npz`` (an array per input name, or ``X`` for a
single-input model, and optionally ``y``). Every feed is cast to its input's dtype.
Texts become token feeds through ``encode`` (the card's tokenizer) when the model takes
token ids. Drawn rows: see ``drawn``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from functions.config.card import TensorSpec
from model_export.exit_codes import InputError

Feeds = dict[str, np.ndarray]
Encode = Callable[[list[str]], Feeds]
"""Texts -> token feeds (the card's tokenizer); None for models without one."""


@dataclass(frozen=True)
class Rows:
    """``feeds`` (input name -> array, all with the same number of rows), optional targets
    ``y`` ([N]); ``origin`` says where they came from, for the reports."""

    feeds: Feeds
    y: np.ndarray | None
    origin: str

    @property
    def n(self) -> int:
        return len(next(iter(self.feeds.values())))

    @property
    def X(self) -> np.ndarray:  # noqa: N802 - the usual name of a feature matrix
        """The one feed of a single-input model."""
        return next(iter(self.feeds.values()))


def take(feeds: Feeds, index: slice | np.ndarray) -> Feeds:
    """The same rows of every feed."""
    return {name: value[index] for name, value in feeds.items()}


def is_text(inputs: list[TensorSpec]) -> bool:
    return len(inputs) == 1 and inputs[0].dtype == "str"


def conform(feeds: Feeds, inputs: list[TensorSpec], where: str) -> Feeds:
    """``feeds`` with exactly the graph's inputs, each in its dtype and rank (an input
    listed with shape ``[]`` takes any rank); InputError otherwise."""
    missing = [s.name for s in inputs if s.name not in feeds]
    if missing:
        raise InputError(f"{where}: no rows for input(s) {', '.join(missing)} "
                         f"(has {', '.join(feeds) or 'nothing'})")
    out: Feeds = {}
    for spec in inputs:
        value = np.asarray(feeds[spec.name])
        try:
            out[spec.name] = (value.astype(object) if spec.dtype == "str"
                              else value.astype(spec.dtype))
        except (ValueError, TypeError) as exc:
            raise InputError(f"{where}: input {spec.name!r} is not {spec.dtype}: {exc}") from exc
        if spec.shape and out[spec.name].ndim != len(spec.shape):
            raise InputError(f"{where}: input {spec.name!r} has shape "
                             f"{list(out[spec.name].shape)}, the model takes {spec.shape}")
    if len({len(v) for v in out.values()}) > 1:
        raise InputError(f"{where}: inputs hold different numbers of rows")
    if not next(iter(out.values()), np.empty(0)).size:
        raise InputError(f"{where}: no rows in it")
    return out


def load(path: Path, inputs: list[TensorSpec], feature_names: list[str] | None = None,
         target: str | None = None, encode: Encode | None = None) -> Rows:
    """Read rows for a model taking ``inputs`` from ``path`` (see module docstring)."""
    if not path.is_file():
        raise InputError(f"{path}: no such rows file")
    suffix = path.suffix.lower()
    texts: list[str] | None = None
    y = None
    try:
        if suffix == ".csv":
            header, body = _read_csv(path, target)
            y = _numeric_or_str([r[header.index(target)] for r in body]) if target else None
            if encode is not None or is_text(inputs):
                texts = [r[_text_column(header, feature_names, target, path)] for r in body]
            else:
                feeds = {inputs[0].name: _numeric(header, body, feature_names or [], target)}
        elif suffix == ".txt":
            texts = [line for line in path.read_text().splitlines() if line.strip()]
        elif suffix == ".npy":
            feeds = {inputs[0].name: np.load(path, allow_pickle=False)}
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                feeds = {k: data[k] for k in data.files if k != "y"}
                y = data["y"] if "y" in data.files else None
            if "X" in feeds and len(inputs) == 1:
                feeds = {inputs[0].name: feeds["X"]}
        else:
            raise InputError(f"{path}: rows must be .csv, .txt, .npy or .npz, not '{suffix}'")
    except (ValueError, KeyError, OSError, IndexError) as exc:
        raise InputError(f"{path}: cannot read rows: {exc}") from exc
    if texts is not None:
        feeds = from_texts(texts, inputs, encode, str(path))
    return Rows(conform(feeds, inputs, str(path)), y, f"file {path.name}")


def from_texts(texts: list[str], inputs: list[TensorSpec], encode: Encode | None,
               where: str) -> Feeds:
    """Texts as the model's feeds: token ids through ``encode``, or one string column."""
    if encode is not None:
        return encode(texts)
    if not is_text(inputs):
        raise InputError(f"{where}: texts given, but the model takes "
                         f"{', '.join(f'{s.name} ({s.dtype})' for s in inputs)}")
    return {inputs[0].name: np.array(texts, dtype=object).reshape(-1, 1)}


def _read_csv(path: Path, target: str | None) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        body = [r for r in reader if r]
    if header is None:
        raise InputError(f"{path}: empty CSV")
    if target is not None and target not in header:
        raise InputError(f"{path}: no target column {target!r} (columns: {', '.join(header)})")
    return header, body


def _text_column(header: list[str], names: list[str] | None, target: str | None,
                 path: Path) -> int:
    for name in [*(names or []), "text"]:
        if name in header:
            return header.index(name)
    others = [i for i, h in enumerate(header) if h != target]
    if len(others) != 1:
        raise InputError(f"{path}: which column is the text? name it 'text' "
                         f"(columns: {', '.join(header)})")
    return others[0]


def _numeric(header: list[str], body: list[list[str]], feature_names: list[str],
             target: str | None) -> np.ndarray:
    if feature_names and all(f in header for f in feature_names):
        cols = [header.index(f) for f in feature_names]
    else:
        cols = [i for i, h in enumerate(header) if h != target]
    return np.array([[float(r[i]) for i in cols] for r in body], dtype=np.float32)


def _numeric_or_str(values: list[str]) -> np.ndarray:
    try:
        return np.array([float(v) for v in values])
    except ValueError:
        return np.array(values)


def feature_ranges(X: np.ndarray, names: list[str]) -> dict[str, tuple[float, float]] | None:
    """Observed [min, max] per named feature of a 2-D numeric table (None otherwise)."""
    if X.ndim != 2 or len(names) != X.shape[1] or X.dtype.kind not in "fiu":
        return None
    lo, hi = X.min(axis=0), X.max(axis=0)
    return {f: (float(a), float(b)) for f, a, b in zip(names, lo, hi, strict=True)}
