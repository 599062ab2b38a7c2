"""A local Hugging Face model directory, loaded offline: model, fast tokenizer, settings.

Only files in the directory are read (``local_files_only``; nothing is asked of the hub):
``config.json``, the weights (safetensors or PyTorch), the tokenizer (``tokenizer.json``,
or the files a fast tokenizer can be built from), and the sentence-transformers files when
present (``modules.json``, ``1_Pooling/config.json``, ``sentence_bert_config.json``), from
which the embedding's pooling, normalisation and maximum length are read.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_export.exit_codes import InputError, NotAModel, UnsupportedModel

TASKS = ("feature-extraction", "text-classification")
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class SentenceSettings:
    """What the sentence-transformers files say (all None when there are none)."""

    pooling: str | None = None
    normalize: bool | None = None
    max_length: int | None = None
    found: list[str] = field(default_factory=list)


@dataclass
class HfModel:
    """The loaded model (eval mode), its config, fast tokenizer and the token inputs its
    ``forward`` takes, in the tokenizer's order."""

    model: Any
    config: Any
    tokenizer: Any  # transformers PreTrainedTokenizerFast
    input_names: list[str]
    sentence: SentenceSettings


def sentence_settings(directory: Path) -> SentenceSettings:
    """Pooling / normalisation / max length from sentence-transformers files, if any."""
    out = SentenceSettings()
    modules = _json(directory / "modules.json") or []
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind == "Pooling":
            pooling = _json(directory / module.get("path", "") / "config.json") or {}
            modes = [m for m in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")
                     if pooling.get(f"pooling_mode_{m}")]
            if modes and modes != ["cls_token"] and modes != ["mean_tokens"]:
                raise UnsupportedModel(f"{directory}: pooling {'+'.join(modes)} is not "
                                       "supported (mean or cls)")
            out.pooling = "cls" if modes == ["cls_token"] else "mean"
            out.found.append(f"{module.get('path')}/config.json")
        elif kind == "Normalize":
            out.normalize = True
    if modules:
        out.normalize = bool(out.normalize)
        out.found.insert(0, "modules.json")
    settings = _json(directory / "sentence_bert_config.json") or {}
    if settings.get("max_seq_length"):
        out.max_length = int(settings["max_seq_length"])
        out.found.append("sentence_bert_config.json")
    return out


def _json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from exc


def load(directory: Path, task: str) -> HfModel:
    """Load ``directory`` for ``task`` (see module docstring); InputError / NotAModel /
    UnsupportedModel say what is wrong."""
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory (a Hugging Face model directory, "
                         "with config.json, weights and tokenizer files)")
    if not (directory / "config.json").is_file():
        raise NotAModel(f"{directory} has no config.json: not a Hugging Face model directory")
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # stderr is for our progress
    hf_logging.set_verbosity_error()

    cls = AutoModelForSequenceClassification if task == "text-classification" else AutoModel
    try:
        model = cls.from_pretrained(str(directory), local_files_only=True,
                                    attn_implementation="eager").eval()
    except (OSError, ValueError, KeyError) as exc:
        raise NotAModel(f"{directory}: transformers cannot load it for {task}: "
                        f"{str(exc).strip().splitlines()[0]}") from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{directory}: no usable tokenizer (tokenizer.json or vocabulary "
                         f"files): {str(exc).strip().splitlines()[0]}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise UnsupportedModel(f"{directory}: only a fast tokenizer (tokenizer.json) can "
                               "travel with the model")
    takes = inspect.signature(model.forward).parameters
    names = [n for n in TOKEN_INPUTS if n in takes]
    if "input_ids" not in names or "attention_mask" not in names:
        raise UnsupportedModel(f"{type(model).__name__}.forward does not take input_ids and "
                               "attention_mask")
    return HfModel(model, model.config, tokenizer, names, sentence_settings(directory))


def max_length(hf: HfModel, requested: int | None) -> int:
    """The longest token sequence to feed: asked for, else sentence-transformers', else the
    tokenizer's, never beyond the model's position embeddings."""
    limit = int(getattr(hf.config, "max_position_embeddings", 0) or 0) or 10**6
    tok_max = int(getattr(hf.tokenizer, "model_max_length", 0) or 0)
    tok_max = tok_max if 0 < tok_max < 10**6 else limit
    want = requested or hf.sentence.max_length or tok_max
    if requested and requested > limit:
        raise InputError(f"--max-length {requested}: the model has {limit} positions")
    return min(want, limit)
