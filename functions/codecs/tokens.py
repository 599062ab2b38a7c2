"""Text -> token inputs with the tokenizer the card declares, and embeddings pooled.

The tokenizer is a Hugging Face ``tokenizer.json`` run by the ``tokenizers`` library (Rust;
imported only by text models). Padding is dynamic, to the longest item of the batch, never
a fixed length; truncation happens at the card's ``max_length`` and is reported per item;
special tokens are those ``tokenizer.json`` declares (how the model was trained). Pooling
and normalisation the card asks for are applied here, in numpy, when the graph does not.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from functions.config.card import ModelCard, TokenizerSpec
from functions.errors import ModelLoadError
from functions.loading.sidecars import tokenizer_path
from functions.model.merging import merge

PAD_TOKENS = ("[PAD]", "<pad>", "<|pad|>")
CHARS_PER_TOKEN = 100  # far above any real token's length, whitespace included
ENCODE_CHUNK = 1024
"""Texts tokenized at once: the tokenizer's Python lists of ids stay this small, whatever
the request's size."""


_READ_AHEAD: dict[Path, Any] = {}
"""Tokenizers parsed while their model's session was built, until a TextEncoder takes them."""
_READ_AHEAD_LOCK = threading.Lock()


def read_ahead(model_path: Path, card: ModelCard) -> None:
    """Parse a text model's tokenizer now, for the TextEncoder that will be built for the
    model at ``model_path``: the loader calls it beside the session build, or earlier, in
    gunicorn's arbiter while the model downloads (``early_fetch.take``); a tokenizer read
    ahead already is not read again. A tokenizer that cannot be read is left to
    TextEncoder, which names the fault."""
    if card.tokenizer is None:
        return
    path = tokenizer_path(model_path)
    with _READ_AHEAD_LOCK:
        if path in _READ_AHEAD:  # read ahead already (by the arbiter before it forked us)
            return
    try:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(path))
    except Exception:  # noqa: BLE001 - read again, and reported, by TextEncoder
        return
    with _READ_AHEAD_LOCK:
        _READ_AHEAD[path] = tokenizer


def _read(path: Path) -> Any:
    """The tokenizer at ``path``: the one read ahead, else parsed now."""
    with _READ_AHEAD_LOCK:
        tokenizer = _READ_AHEAD.pop(path, None)
    if tokenizer is not None:
        return tokenizer
    from tokenizers import Tokenizer  # ~30 ms of import, paid by text models only

    return Tokenizer.from_file(str(path))


class TextEncoder:
    """Encodes batches of strings into the graph's token inputs (numpy, graph dtypes)."""

    def __init__(self, path: Path, spec: TokenizerSpec, graph_inputs: dict[str, np.dtype]) -> None:
        # the tokenizer's own thread pool would contend with onnxruntime's threads for the
        # instance's few cores (and hand even one text to it); one that is set is honoured
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            self.tokenizer = _read(path)
        except Exception as exc:  # the Rust side raises its own Exception subclass
            raise ModelLoadError(f"tokenizer {spec.file} cannot be read: {exc}") from exc
        self.spec = spec
        # tokenizer output -> (graph input, dtype), for the outputs the graph takes
        self.feeds = {role: (name, graph_inputs[name]) for role, name in spec.input_names.items()
                      if name in graph_inputs}
        if "input_ids" not in self.feeds:
            raise ModelLoadError(f"the card's tokenizer feeds {spec.input_names['input_ids']!r} "
                                 f"but the graph's inputs are {sorted(graph_inputs)}")
        unfed = sorted(set(graph_inputs) - {name for name, _ in self.feeds.values()})
        if unfed:
            raise ModelLoadError(f"graph inputs {unfed} are not produced by the tokenizer "
                                 "(see the card's tokenizer.input_names)")
        self.tokenizer.enable_truncation(max_length=spec.max_length)
        padding = self.tokenizer.padding or {}
        pad_id, pad_token = padding.get("pad_id"), padding.get("pad_token")
        if pad_token is None:
            pad_token = next((t for t in PAD_TOKENS if self.tokenizer.token_to_id(t) is not None),
                             "[PAD]")
            pad_id = self.tokenizer.token_to_id(pad_token) or 0
        self.pad_id = pad_id or 0
        self.tokenizer.enable_padding(pad_id=self.pad_id, pad_token=pad_token)  # to the longest

    def encode(self, texts: list[str]) -> tuple[dict[str, np.ndarray], list[int]]:
        """(feeds, indices of truncated texts) for ``texts`` in one padded batch.

        Text longer than ``CHARS_PER_TOKEN`` characters per token of ``max_length`` is cut
        before tokenizing (and reported truncated): a 32 MB string must not cost seconds
        to tokenize when all but the first few hundred tokens are thrown away."""
        limit = self.spec.max_length * CHARS_PER_TOKEN
        cut = [i for i, text in enumerate(texts) if len(text) > limit]
        if cut:
            texts = [text[:limit] for text in texts]
        parts = []
        truncated = set(cut)
        for lo in range(0, max(len(texts), 1), ENCODE_CHUNK):
            encodings = self.tokenizer.encode_batch(texts[lo:lo + ENCODE_CHUNK])
            columns = {"input_ids": [e.ids for e in encodings],
                       "attention_mask": [e.attention_mask for e in encodings],
                       "token_type_ids": [e.type_ids for e in encodings]}
            parts.append({name: np.asarray(columns[role], dtype=dtype)
                          for role, (name, dtype) in self.feeds.items()})
            truncated.update(lo + i for i, e in enumerate(encodings) if e.overflowing)
        feeds = parts[0] if len(parts) == 1 else merge(parts, self.pads())
        return feeds, sorted(truncated)

    def pads(self) -> dict[str, int]:
        """Token inputs and the value that pads each."""
        values = {"input_ids": self.pad_id, "attention_mask": 0, "token_type_ids": 0}
        return {name: values[role] for role, (name, _) in self.feeds.items()}

    def _mask(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Which tokens are real: the attention mask, or (not fed) every non-pad id."""
        if "attention_mask" in self.feeds:
            return feeds[self.feeds["attention_mask"][0]]
        return feeds[self.feeds["input_ids"][0]] != self.pad_id

    def pool(self, output: np.ndarray, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The card's pooling and normalisation of one [batch, tokens, dim] (or pooled) output."""
        spec = self.spec
        if output.ndim == 3 and spec.pooling == "cls":
            output = output[:, 0]
        elif output.ndim == 3 and spec.pooling == "mean":
            mask = self._mask(feeds).astype(output.dtype)[..., None]
            # ufuncs, not np.clip and np.linalg.norm (the same values, bit for bit): their
            # Python-level dispatch costs more than the arithmetic of a few rows
            output = (output * mask).sum(axis=1) / np.maximum(mask.sum(axis=1),
                                                              output.dtype.type(1e-9))
        if spec.normalize:
            norms = np.sqrt(np.add.reduce(output * output, axis=-1, keepdims=True))
            output = output / np.maximum(norms, output.dtype.type(1e-12))
        return output
