"""Sequence packing: a text encoder's calls without padding, behind the padded signature.

A padded call of texts of mixed lengths computes every pad token, and a short call pays
the whole graph's fixed cost (on a 2-vCPU host, ~1.5 ms for all-MiniLM-L6-v2, mostly its
42 MB of weights read from memory) for few tokens. A packed graph (``model_export hf
--packed``) takes several texts in one row instead: ``segment_ids`` says which text each
token belongs to (0: padding), ``position_ids`` restart at each text, and the graph's
attention mask is block-diagonal, so a text attends only to itself and its embedding is the
padded graph's (to float rounding). It returns the last hidden state; pooling (mean over a
text's tokens, or its first token) and normalisation happen here.

``PackedSession`` wraps such a session and shows the card's padded signature
(``input_ids``, ``attention_mask``, ``token_type_ids`` -> ``embedding``), so everything
above the model (codecs, batcher, cuts, /v2) is unchanged: each call's padded rows are
packed into rows of about ``ROW_TOKENS`` tokens (longest first, each into the least-filled
row, so rows come out nearly equal and little is padded), run, and pooled back per text.
Attention costs grow with a row's length squared, which is why rows stay short while a call
takes as many rows as it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ROW_TOKENS = 128
"""Tokens a packed row aims at (a longer text gets a row its length). The model alone on
MiniLM, 2 vCPU, merges of 8 to 64 sentences: rows of 96-128 tokens ran 1.2-1.35x the padded
floor, rows of 32 ~1.0x (more rows, each of a text or two), one row of a whole merge of 64
(1,142 tokens) 0.63x: attention grows with a row's length squared (docs/benchmarks.md)."""

CALL_TOKENS = 128
"""Real tokens a call aims at when a merge is cut for packing (``cuts._cut_for_packing``).
Served, MiniLM, 16 connections: calls of 96-128 tokens read 658-667 sentences/s against 579
padded, calls of 512 no better than padded (docs/benchmarks.md)."""


@dataclass(frozen=True)
class PackingSpec:
    """What the card's ``extra["packing"]`` says of a packed graph."""

    ids: str = "input_ids"
    segments: str = "segment_ids"
    positions: str = "position_ids"
    hidden: str = "hidden"
    pooling: str = "mean"
    normalize: bool = True
    output: str = "embedding"
    mask: str = "attention_mask"

    @classmethod
    def of(cls, extra: dict[str, Any]) -> PackingSpec | None:
        spec = extra.get("packing")
        if not isinstance(spec, dict):
            return None
        known = {k: v for k, v in spec.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class _Arg:
    """A graph input or output as onnxruntime describes one (what ``OnnxModel`` reads)."""

    name: str
    type: str
    shape: list[Any]


def rows_of(lengths: np.ndarray, row_tokens: int = ROW_TOKENS) -> list[list[int]]:
    """Texts (indices into ``lengths``) per packed row: longest first, each into the
    least-filled of ``ceil(total / row_tokens)`` rows (at least as long as the longest)."""
    target = max(row_tokens, int(lengths.max()))
    count = max(1, -(-int(lengths.sum()) // target))
    fill = [0] * count
    rows: list[list[int]] = [[] for _ in range(count)]
    for i in np.argsort(-lengths, kind="stable").tolist():
        r = fill.index(min(fill))
        fill[r] += int(lengths[i])
        rows[r].append(i)
    return [r for r in rows if r]


def pack(ids: np.ndarray, real: np.ndarray, spec: PackingSpec,
         row_tokens: int = ROW_TOKENS) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The packed feeds of padded ``ids`` [texts, width] whose tokens where ``real`` are the
    text (pads on either side are dropped; a text with none keeps its first token), and where
    each text's tokens went: [texts, 2] (flat start in the packed [rows x length] layout,
    token count). A loop per text: a call holds ~``CALL_TOKENS`` tokens, a few texts, where
    it took half the time of a scatter in numpy (13.6 against 28.5 us for one text, 29 against
    32 us for seven; the scatter wins from a few dozen)."""
    real = real.copy()
    real[~real.any(axis=1), 0] = True
    lengths = real.sum(axis=1)
    rows = rows_of(lengths, row_tokens)
    width = max(int(lengths[r].sum()) for r in rows)
    packed = np.zeros((len(rows), width), dtype=np.int64)
    segments = np.zeros_like(packed)
    positions = np.zeros_like(packed)
    where = np.zeros((len(lengths), 2), dtype=np.int64)
    for b, row in enumerate(rows):
        at = 0
        for s, i in enumerate(row, start=1):
            n = int(lengths[i])
            packed[b, at:at + n] = ids[i][real[i]]
            segments[b, at:at + n] = s
            positions[b, at:at + n] = np.arange(n)
            where[i] = (b * width + at, n)
            at += n
    feeds = {spec.ids: packed, spec.segments: segments, spec.positions: positions}
    return feeds, where


def pool(hidden: np.ndarray, where: np.ndarray, spec: PackingSpec) -> np.ndarray:
    """Each text's embedding from the packed last hidden state [rows, length, width]."""
    flat = hidden.reshape(-1, hidden.shape[-1])
    starts, counts = where[:, 0], where[:, 1]
    if spec.pooling == "cls":
        out = flat[starts].astype(np.float32)
    else:
        firsts = np.cumsum(counts) - counts  # each text's first row in flat[index]
        index = np.repeat(starts - firsts, counts) + np.arange(counts.sum())
        sums = np.add.reduceat(flat[index], firsts, axis=0)
        out = (sums / counts[:, None]).astype(np.float32)
    if spec.normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def _check(feeds: dict[str, np.ndarray], ids: str) -> None:
    """Token inputs the padded graph would refuse are refused here too, as onnxruntime
    refuses them (its ``InvalidArgument``: the batch's other items are then isolated and
    scored, functions.model.isolation): [texts, tokens] each, the same shape, tokens > 0."""
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

    shape = np.shape(feeds[ids])
    if len(shape) != 2 or shape[1] == 0:
        raise InvalidArgument(f"{ids} must be [texts, tokens] with tokens > 0, not {shape}")
    for name, value in feeds.items():
        if np.shape(value) != shape:
            raise InvalidArgument(f"{name} has shape {np.shape(value)} and {ids} {shape}: "
                                  "token inputs must have the same shape")


def for_card(session: Any, card: Any) -> Any:
    """``session``, or a ``PackedSession`` of it when ``card`` (a ``ModelCard``) says its
    graph is packed: what the function, ``model_export``'s checks and the benchmarks run."""
    spec = PackingSpec.of(card.extra)
    return session if spec is None else PackedSession(session, spec, card.inputs, card.outputs)


class PackedSession:
    """An onnxruntime session of a packed graph, seen through the card's padded signature."""

    def __init__(self, session: Any, spec: PackingSpec, inputs: list[Any],
                 outputs: list[Any], row_tokens: int = ROW_TOKENS) -> None:
        self.session, self.spec, self.row_tokens = session, spec, row_tokens
        self._inputs = [_Arg(i.name, f"tensor({'float' if i.dtype == 'float32' else i.dtype})",
                             ["batch", "tokens"]) for i in inputs]
        self._outputs = [_Arg(o.name, "tensor(float)", ["batch", *o.shape[1:]])
                         for o in outputs]

    def get_inputs(self) -> list[_Arg]:
        return self._inputs

    def get_outputs(self) -> list[_Arg]:
        return self._outputs

    def get_providers(self) -> list[str]:
        return self.session.get_providers()

    def run(self, names: list[str] | None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The padded graph's answer to ``feeds``: only its one output, ``spec.output``."""
        ids = np.asarray(feeds[self.spec.ids])
        _check(feeds, self.spec.ids)
        if ids.shape[0] == 0:
            return [np.zeros((0, self._width()), dtype=np.float32)]
        mask = feeds.get(self.spec.mask)
        real = np.asarray(mask) != 0 if mask is not None else np.ones(ids.shape, dtype=bool)
        packed, where = pack(ids, real, self.spec, self.row_tokens)
        hidden = self.session.run([self.spec.hidden], packed)[0]
        return [pool(hidden, where, self.spec)]

    def _width(self) -> int:
        return int(self.session.get_outputs()[0].shape[-1])
