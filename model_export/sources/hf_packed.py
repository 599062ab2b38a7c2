"""``hf --packed`` (the default for BERT embedding models): several texts a row, no padding.

The graph takes ``input_ids``, ``segment_ids`` (0: padding, k: the row's k-th text) and
``position_ids`` (restarting at each text), all int64 [rows, tokens], and answers ``hidden``,
the last hidden state [rows, tokens, width]. Its attention mask is block-diagonal, built in
the graph from ``segment_ids``: a token attends only to its own text's tokens, so each
text's hidden states are those the padded graph gives it (to float rounding; ``hf``'s
parity check runs the packed graph through the function's own adapter,
``functions.model.packing``, against ``transformers`` on padded batches). Pooling and
normalisation happen in that adapter, after the call.

The card keeps the padded signature the function serves (the token inputs, ``embedding``
[N, width]) and says how the graph is fed in ``extra["packing"]``.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import onnx

from functions.config.card import TensorSpec
from model_export.exit_codes import InputError, UnsupportedModel
from model_export.sources import hf_files

PACKED_TYPES = ("bert",)
"""Encoders whose embeddings take explicit position ids as they are (RoBERTa-style models
offset theirs past the padding index: not handled yet)."""


def applies(hf: hf_files.HfModel, task: str) -> bool:
    """Whether ``hf`` packs by default: an embedding model of a type handled here."""
    return task == "feature-extraction" and str(hf.config.model_type) in PACKED_TYPES


def check(hf: hf_files.HfModel, task: str) -> None:
    if task != "feature-extraction":
        raise InputError("--packed is for embedding models (--task feature-extraction)")
    model_type = str(hf.config.model_type)
    if model_type not in PACKED_TYPES:
        raise InputError(f"--packed supports {', '.join(PACKED_TYPES)} encoders; this model "
                         f"is {model_type}: export it without --packed")


def _module(hf: hf_files.HfModel) -> Any:
    import torch

    base = hf.model
    if hasattr(base, "set_attn_implementation"):  # the mask is added to the scores as given
        base.set_attn_implementation("eager")

    class Packed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = base

        def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor,
                    position_ids: torch.Tensor) -> torch.Tensor:
            same = (segment_ids[:, :, None] == segment_ids[:, None, :]) \
                & (segment_ids[:, None, :] > 0)
            bias = (~same).to(torch.float32)[:, None] * torch.finfo(torch.float32).min
            hidden = self.model.embeddings(input_ids=input_ids,
                                           token_type_ids=torch.zeros_like(input_ids),
                                           position_ids=position_ids)
            for layer in self.model.encoder.layer:
                out = layer(hidden, bias)
                hidden = out[0] if isinstance(out, tuple) else out
            return hidden

    return Packed().eval()


def export(hf: hf_files.HfModel, opset: int, name: str) -> onnx.ModelProto:
    """The packed graph described above, traced on two texts sharing a row plus padding."""
    import torch

    names = ["input_ids", "segment_ids", "position_ids"]
    trace = (torch.tensor([[2, 5, 3, 2, 6, 7, 3, 0]]),  # ids any vocabulary holds
             torch.tensor([[1, 1, 1, 2, 2, 2, 2, 0]]),
             torch.tensor([[0, 1, 2, 0, 1, 2, 3, 0]]))
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter is chosen; verify checks
            torch.onnx.export(_module(hf), trace, buffer, dynamo=False, opset_version=opset,
                              input_names=names, output_names=["hidden"],
                              dynamic_axes={n: {0: "rows", 1: "tokens"}
                                            for n in [*names, "hidden"]})
    except Exception as exc:  # exporter errors have no common base; say what failed
        raise UnsupportedModel(f"torch.onnx could not export the packed "
                               f"{type(hf.model).__name__}: {exc}") from exc
    proto = onnx.load_from_string(buffer.getvalue())
    proto.graph.name = name
    return proto


def card_fields(hf: hf_files.HfModel, pooling: str, normalize: bool) -> dict[str, Any]:
    """The card's ``extra["packing"]`` and the padded signature it serves."""
    width = int(hf.config.hidden_size)
    return {
        "packing": {"ids": "input_ids", "segments": "segment_ids",
                    "positions": "position_ids", "hidden": "hidden", "pooling": pooling,
                    "normalize": normalize, "output": "embedding",
                    "mask": "attention_mask"},
        "served_inputs": [TensorSpec(name=n, dtype="int64", shape=[None, None])
                          for n in hf.input_names],
        "served_outputs": [TensorSpec(name="embedding", dtype="float32", shape=[None, width])],
    }
