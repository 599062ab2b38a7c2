"""The model: an onnxruntime session plus its signature. Loads and runs arrays, nothing else.

It knows nothing of HTTP, JSON or events. Session settings are chosen for a 1-2 vCPU
serverless instance: explicit intra-op threads, one inter-op thread, no idle spinning
(spinning threads burn the CPU that the next request, or the instance's bill, needs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from functions.card import ModelCard, TensorSpec
from functions.errors import ModelLoadError
from functions.settings import Settings

log = logging.getLogger(__name__)

ORT_TO_NUMPY: dict[str, str] = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int16)": "int16",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32", "tensor(uint64)": "uint64", "tensor(bool)": "bool",
    "tensor(string)": "str",
}
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def _spec(arg: Any) -> TensorSpec:
    shape = [d if isinstance(d, int) else None for d in arg.shape]
    return TensorSpec(name=arg.name, dtype=ORT_TO_NUMPY.get(arg.type, arg.type), shape=shape)


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


def session_options(settings: Settings, skip_optimisation: bool = False) -> ort.SessionOptions:
    """Options for a small serverless instance."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = settings.intra_op_threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                                     if settings.optimized_model or skip_optimisation
                                     else ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    opts.log_severity_level = 3
    return opts


@dataclass(frozen=True)
class RowInput:
    """The one 2-D input that row-format instances ([batch, n_features]) feed."""

    name: str
    dtype: np.dtype
    n_features: int | None


class OnnxModel:
    """A loaded model: ``run`` maps input arrays to output arrays, nothing more."""

    def __init__(self, path: Path, card: ModelCard, settings: Settings) -> None:
        self.path = path
        self.card = card
        providers = choose_providers(settings, ort.get_available_providers())
        try:
            self.graph_optimised_offline = settings.optimized_model or optimised_offline(card)
            self.session = ort.InferenceSession(
                str(path), session_options(settings, self.graph_optimised_offline),
                providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelLoadError(f"onnxruntime cannot load {path.name}: {exc}") from exc
        self.providers: list[str] = self.session.get_providers()
        if settings.execution_providers == "gpu" and not set(GPU_PROVIDERS) & set(self.providers):
            raise ModelLoadError(
                "EXECUTION_PROVIDERS=gpu but onnxruntime fell back to "
                f"{self.providers}: CUDAExecutionProvider is not active (driver or CUDA "
                "libraries missing?)")
        self.inputs = [_spec(i) for i in self.session.get_inputs()]
        self.outputs = [_spec(o) for o in self.session.get_outputs()]
        self.output_names = [o.name for o in self.outputs]
        self.row_input = self._row_input()
        log.info("model %s:%s loaded with providers %s", card.name, card.version, self.providers)

    def _row_input(self) -> RowInput | None:
        if len(self.inputs) != 1 or len(self.inputs[0].shape) != 2:
            return None
        spec = self.inputs[0]
        if spec.dtype == "str":
            return None
        width = spec.shape[1] if isinstance(spec.shape[1], int) else None
        if width is None and self.card.feature_names:
            width = len(self.card.feature_names)
        return RowInput(spec.name, np.dtype(spec.dtype), width)

    def run(self, feeds: dict[str, np.ndarray],
            outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """One session call. ``feeds`` must match the graph's inputs (name -> array)."""
        names = outputs or self.output_names
        return dict(zip(names, self.session.run(names, feeds)))

    def warmup(self) -> None:
        """One inference on zeros so the first real request pays no lazy initialisation."""
        feeds = {}
        for spec in self.inputs:
            shape = [1 if not isinstance(d, int) else d for d in spec.shape]
            dtype = object if spec.dtype == "str" else np.dtype(spec.dtype)
            feeds[spec.name] = np.zeros(shape, dtype=dtype) if dtype is not object \
                else np.full(shape, "", dtype=object)
        self.run(feeds)
