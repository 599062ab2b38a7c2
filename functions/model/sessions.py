"""onnxruntime session options and execution providers, one policy for serving and export.

Chosen for a 1-2 vCPU serverless instance: explicit intra-op threads, one inter-op thread,
no idle spinning (spinning threads burn the CPU that the next request, or the instance's
bill, needs). ``model_export`` times and verifies models with these same options, so its
numbers mean what serving will see.
"""

from __future__ import annotations

from typing import Any

import onnxruntime as ort

from functions.config.card import ModelCard
from functions.config.settings import Settings
from functions.errors import ModelLoadError

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def choose_providers(settings: Settings, available: list[str]) -> list[Any]:
    """Providers to ask for, best first; raises ModelLoadError when GPU is required but absent."""
    if settings.execution_providers == "cpu":
        return ["CPUExecutionProvider"]
    chosen: list[Any] = []
    if "TensorrtExecutionProvider" in available:
        settings.trt_cache_dir.mkdir(parents=True, exist_ok=True)
        chosen.append(("TensorrtExecutionProvider", {
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": str(settings.trt_cache_dir),
            "trt_timing_cache_enable": "True",
        }))
    if "CUDAExecutionProvider" in available:
        chosen.append("CUDAExecutionProvider")
    if not chosen and settings.execution_providers == "gpu":
        raise ModelLoadError(
            "EXECUTION_PROVIDERS=gpu but CUDAExecutionProvider is not available in this "
            f"onnxruntime build (available: {', '.join(available)}); install onnxruntime-gpu "
            "on a machine with an NVIDIA driver, or set EXECUTION_PROVIDERS=cpu")
    return chosen + ["CPUExecutionProvider"]


def optimised_offline(card: ModelCard) -> bool:
    """The card's last step was ``model_export optimize``: the graph is already rewritten."""
    return bool(card.variants) and card.variants[-1].get("kind") == "optimize"


def session_options(settings: Settings, skip_optimisation: bool = False,
                    threads: int | None = None) -> ort.SessionOptions:
    """Options for a small serverless instance (``threads``: intra-op threads other than
    INTRA_OP_THREADS)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or settings.intra_op_threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                                     if settings.optimized_model or skip_optimisation
                                     else ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    opts.log_severity_level = 3
    return opts
