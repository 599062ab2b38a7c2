"""Rows drawn from what the card says about the model's inputs, when no rows file is given.

Per input: a tabular float input [N, F] is uniform within ``feature_ranges`` (when the
card has them for every feature); an input with a declared range (the card's extra
``input_ranges``, written from ``--input name:dtype:shape:LO..HI``) is uniform in it,
integers inclusive of both ends; other floats are standard normal; other integers are 0 or
1 (safe for any embedding table and for masks). Dynamic non-batch axes get
``DYNAMIC_LENGTH`` entries. Text inputs, and token inputs of a model with a tokenizer, get
``SAMPLE_TEXTS`` cycled (through ``encode`` for token models).
"""

from __future__ import annotations

import numpy as np

from functions.config.card import ModelCard, TensorSpec
from model_export.exit_codes import InputError
from model_export.samples.row_files import Encode, Rows, conform, from_texts, is_text, take

DYNAMIC_LENGTH = 8

SAMPLE_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "I loved this film: the acting was superb and the ending made me cry.",
    "Terrible service, cold food, and we waited an hour for the bill.",
    "How do I reset my password if I no longer have access to my email?",
    "Quarterly revenue rose 12% while operating costs fell slightly.",
    "The patient reported mild headaches and occasional dizziness.",
    "Une phrase en français, pour voir ce que fait le tokenizer.",
    "short",
    "Machine learning models are deployed behind HTTPS endpoints every day.",
    "The train to Berlin leaves at 7:45 from platform 3.",
    "Can you recommend a good book about the history of mathematics?",
    "This product broke after two days. Do not buy it!",
    "The weather tomorrow will be sunny with a light breeze from the west.",
    "Add two cups of flour, a pinch of salt, and stir until smooth.",
    "Error 503: the service is temporarily unavailable, please retry later.",
    "She plays the cello in a string quartet on weekends.",
    "ok",
    "No thanks!",
]


def input_ranges(card: ModelCard) -> dict[str, tuple[float, float]]:
    """The declared [low, high] per input name (card extra ``input_ranges``)."""
    raw = card.extra.get("input_ranges") or {}
    return {name: (float(lo), float(hi)) for name, (lo, hi) in raw.items()}


def draw(card: ModelCard, n: int, seed: int = 0, encode: Encode | None = None) -> Rows:
    """``n`` rows for every input of the card (see module docstring)."""
    if not card.inputs:
        raise InputError(f"card of {card.name} lists no inputs to draw rows for")
    if encode is not None or is_text(card.inputs):
        texts = [SAMPLE_TEXTS[i % len(SAMPLE_TEXTS)] for i in range(n)]
        feeds = from_texts(texts, card.inputs, encode, "drawn texts")
        return Rows(conform(feeds, card.inputs, "drawn texts"), None,
                    f"{n} sample sentences (built in)")
    rng = np.random.default_rng(seed)
    ranges = input_ranges(card)
    feeds = {spec.name: _draw_one(spec, card, ranges.get(spec.name), n, rng)
             for spec in card.inputs}
    how = "feature_ranges" if card.feature_ranges and len(card.inputs) == 1 else (
        "declared input ranges" if ranges else "N(0, 1)")
    return Rows(conform(feeds, card.inputs, "drawn rows"), None, f"{n} rows drawn from {how}")


def _draw_one(spec: TensorSpec, card: ModelCard, bounds: tuple[float, float] | None, n: int,
              rng: np.random.Generator) -> np.ndarray:
    shape = [n] + [d if isinstance(d, int) else DYNAMIC_LENGTH for d in spec.shape[1:]]
    kind = np.dtype(spec.dtype).kind
    names, franges = card.feature_names, card.feature_ranges or {}
    if kind == "f" and bounds is None and len(shape) == 2 and names and len(card.inputs) == 1 \
            and all(f in franges for f in names):
        lo = np.array([franges[f][0] for f in names])
        hi = np.array([franges[f][1] for f in names])
        return rng.uniform(lo, hi, size=(n, len(names)))
    if kind in "iu":
        lo, hi = bounds or (0, 1)
        return rng.integers(int(lo), int(hi), size=shape, endpoint=True)
    if kind == "b":
        return rng.integers(0, 1, size=shape, endpoint=True).astype(bool)
    if bounds is not None:
        return rng.uniform(bounds[0], bounds[1], size=shape)
    return rng.standard_normal(size=shape)


def resize(rows: Rows, n: int) -> dict[str, np.ndarray]:
    """``n`` rows made by cycling ``rows`` (for latency at a batch size)."""
    return take(rows.feeds, np.arange(n) % rows.n)
