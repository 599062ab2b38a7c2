"""Hugging Face text models to ONNX: the model wrapped so the graph answers what is served.

Inputs are the token inputs its ``forward`` takes (``input_ids``, ``attention_mask``,
``token_type_ids``: int64 [batch, sequence], both axes dynamic). An embedding model
(``feature-extraction``) answers ``embedding`` [N, D]: pooling (mean over the attention
mask, or the first token) and L2 normalisation are done in the graph, so the function's
tokenizer spec says ``pooling: none``. A ``text-classification`` model answers ``label``
and ``probabilities`` (softmax of the logits), labels from the config's ``id2label``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from functions.config.card import ModelCard
from model_export.sources import hf_files
from model_export.sources.declared_inputs import DeclaredInput
from model_export.sources.torch_convert import TorchSource
from model_export.sources.torch_files import LoadedModule


def wrap(hf: hf_files.HfModel, task: str, pooling: str, normalize: bool) -> Any:
    """An ``nn.Module`` taking ``hf.input_names`` positionally, answering the graph's output."""
    import torch

    class TextModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = hf.model

        def forward(self, *tokens: torch.Tensor) -> torch.Tensor:
            kwargs = dict(zip(hf.input_names, tokens, strict=True))
            out = self.model(**kwargs)
            if task == "text-classification":
                return out.logits
            hidden = out.last_hidden_state
            if pooling == "cls":
                emb = hidden[:, 0]
            else:
                mask = kwargs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                emb = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(emb, p=2, dim=1) if normalize else emb

    return TextModel().eval()


def source(hf: hf_files.HfModel, task: str, pooling: str, normalize: bool) -> TorchSource:
    """The wrapped model as a parity source (its outputs named as in the graph)."""
    from transformers import __version__

    arch = type(hf.model).__name__
    return TorchSource(LoadedModule(wrap(hf, task, pooling, normalize), "hf"),
                       "embedding" if task == "feature-extraction" else "classification",
                       "softmax", list(hf.input_names),
                       description=f"transformers {__version__} {arch}")


def specs(hf: hf_files.HfModel) -> list[DeclaredInput]:
    """int64 [batch, sequence] token inputs; ids drawn within the vocabulary."""
    bounds = {"input_ids": (0.0, float(hf.config.vocab_size - 1)),
              "attention_mask": (1.0, 1.0), "token_type_ids": (0.0, 0.0)}
    return [DeclaredInput(n, "int64", ("sequence",), bounds[n]) for n in hf.input_names]


def labels(hf: hf_files.HfModel) -> list[str]:
    """Class names in column order, from the config's ``id2label``."""
    id2label = getattr(hf.config, "id2label", None) or {}
    return [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}")))
            for i in range(int(hf.config.num_labels))]


def source_for_card(directory: Path, card: ModelCard) -> TorchSource:
    """The model in ``directory`` wrapped as the card's export was (for ``verify``)."""
    task = "feature-extraction" if card.task == "embedding" else "text-classification"
    hf = hf_files.load(directory, task)
    emb = card.extra.get("embedding") or {}
    order = card.converter.get("input_order")
    if order:
        hf.input_names = order.split(",")
    return source(hf, task, emb.get("pooling", "mean"), bool(emb.get("normalized", False)))
