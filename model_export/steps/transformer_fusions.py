"""Transformer fusions: onnxruntime's transformers optimizer, where its patterns apply.

For a graph exported by ``hf`` (the card's framework is ``transformers``), attention
blocks, layer norms with their residual adds, GELU and the embedding layer are rewritten
into onnxruntime's fused kernels (``Attention``, ``SkipLayerNormalization``,
``FastGelu``/``BiasGelu``, ``EmbedLayerNormalization``). Model types the optimizer does
not name are tried as ``bert`` (encoder-only); a fusion whose pattern is not found is
simply not applied. ``optimize`` runs this before onnxruntime's own graph optimisations.
"""

from __future__ import annotations

import logging
from pathlib import Path

from functions.config.card import ModelCard
from model_export.exit_codes import ExportError


def applies(card: ModelCard) -> bool:
    return card.framework.get("name") == "transformers"


def fuse(model: Path, card: ModelCard, dest: Path) -> dict[str, int]:
    """Write the fused graph of ``model`` to ``dest``; returns the fused operator counts."""
    from onnxruntime.transformers import optimizer

    fw = card.framework
    model_type = fw.get("model_type", "bert")
    if model_type not in optimizer.MODEL_TYPES:
        model_type = "bert"
    for name in ("onnxruntime.transformers", "fusion_base", "onnx_model"):
        logging.getLogger(name).setLevel(logging.ERROR)  # per-pattern chatter
    try:
        fused = optimizer.optimize_model(
            str(model), model_type=model_type, num_heads=int(fw.get("num_heads", 0)),
            hidden_size=int(fw.get("hidden_size", 0)), opt_level=0)
        fused.save_model_to_file(str(dest))
    except Exception as exc:  # the optimizer's errors have no common base
        raise ExportError(f"onnxruntime's transformers optimizer failed on {model.name}: "
                          f"{exc}") from exc
    return {op: n for op, n in fused.get_fused_operator_statistics().items() if n}
