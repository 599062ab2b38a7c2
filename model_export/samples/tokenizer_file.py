"""The tokenizer that travels beside a text model: written once, described in the card, used
to turn texts into the model's token feeds.

``write`` saves a Hugging Face ``tokenizer.json`` set up as the function uses it: padding
to the longest text of a batch (the model's pad token), truncation at ``max_length``, the
special tokens of its post-processor as the model was trained. ``encoder`` reads it back
(the file named by the card, beside the model) for verify, optimize and quantize rows.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from functions.config.card import ModelCard
from model_export.exit_codes import InputError
from model_export.samples.row_files import Encode, Feeds


def write(tokenizer: object, path: Path, max_length: int, pad_id: int, pad_token: str) -> str:
    """Save ``tokenizer`` (a ``tokenizers.Tokenizer``) to ``path`` as described above;
    returns the file's sha256."""
    tokenizer.no_padding()  # type: ignore[attr-defined]
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)  # type: ignore[attr-defined]
    tokenizer.enable_truncation(max_length=max_length)  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))  # type: ignore[attr-defined]
    return hashlib.sha256(path.read_bytes()).hexdigest()


def path_for(card: ModelCard, model: Path) -> Path | None:
    """The card's tokenizer file beside ``model`` (None when the card has none)."""
    return model.parent / card.tokenizer.file if card.tokenizer else None


def encoder(card: ModelCard, model: Path) -> Encode | None:
    """Texts -> the graph's token feeds, through the card's tokenizer file; None for
    models without a tokenizer. InputError when the file is missing or not the card's."""
    path = path_for(card, model)
    if path is None or card.tokenizer is None:
        return None
    if not path.is_file():
        raise InputError(f"{path}: the tokenizer the card of {model.name} names is missing")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if card.tokenizer.sha256 and digest != card.tokenizer.sha256:
        raise InputError(f"{path}: sha256 {digest} is not the card's "
                         f"({card.tokenizer.sha256})")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    wanted = {src: dst for src, dst in card.tokenizer.input_names.items()
              if dst in {s.name for s in card.inputs}}

    def encode(texts: list[str]) -> Feeds:
        batch = tok.encode_batch(texts)
        fields = {"input_ids": [e.ids for e in batch],
                  "attention_mask": [e.attention_mask for e in batch],
                  "token_type_ids": [e.type_ids for e in batch]}
        return {dst: np.array(fields[src], dtype=np.int64) for src, dst in wanted.items()}

    return encode
