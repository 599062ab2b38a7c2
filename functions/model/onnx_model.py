"""The model: an onnxruntime session plus its signature. Loads and runs arrays, nothing else.

It knows nothing of HTTP, JSON or events, nor of how calls are scheduled (the runner's
job). Session options and providers come from ``functions.model.sessions``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from functions.config.card import ModelCard, TensorSpec
from functions.config.settings import Settings
from functions.errors import ModelLoadError
from functions.model.custom_ops import register_custom_ops
from functions.model.graph_check import card_problems
from functions.model.packing import PackingSpec, for_card
from functions.model.sessions import (
    GPU_PROVIDERS,
    choose_providers,
    optimised_offline,
    session_options,
)

log = logging.getLogger(__name__)

ORT_TO_NUMPY: dict[str, str] = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int16)": "int16",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32", "tensor(uint64)": "uint64", "tensor(bool)": "bool",
    "tensor(string)": "str",
}


def _spec(arg: Any) -> TensorSpec:
    shape = [d if isinstance(d, int) else None for d in arg.shape]
    return TensorSpec(name=arg.name, dtype=ORT_TO_NUMPY.get(arg.type, arg.type), shape=shape)


def _token_outputs(inputs: list[Any], outputs: list[Any]) -> dict[str, int]:
    """Outputs whose second axis may be the inputs' token axis, with their declared rank (a
    text model's ``tokens``: such an output is cut back to each request's length, and
    padded across calls of different lengths, where its rank is the declared one and its
    second axis the call's length; a pooled output, one axis fewer, never is). Ruled out:
    an axis of fixed size (classes, hidden units) and one declared as another axis of the
    inputs (``batch``); a symbol the inputs do not name (an exporter's ``unk__3``) or none
    at all leaves only the size to tell."""
    named = {d for i in inputs for d in i.shape if isinstance(d, str)}
    tokens = {i.shape[1] for i in inputs if len(i.shape) >= 2 and isinstance(i.shape[1], str)}
    return {o.name: len(o.shape) for o in outputs if len(o.shape) >= 2 and (
        o.shape[1] is None or o.shape[1] in tokens or
        (isinstance(o.shape[1], str) and o.shape[1] not in named))}


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
        self.settings = settings
        self._asked = choose_providers(settings, ort.get_available_providers())
        self.graph_optimised_offline = settings.optimized_model or optimised_offline(card)
        self.packing = PackingSpec.of(card.extra)
        """A packed graph's feeding (``functions.model.packing``); None for any other."""
        self.session = self._open()
        self.pair_session: ort.InferenceSession | None = None
        """A second session of the graph with fewer intra-op threads (``pair_run``)."""
        self.providers: list[str] = self.session.get_providers()
        if settings.execution_providers == "gpu" and not set(GPU_PROVIDERS) & set(self.providers):
            raise ModelLoadError(
                "EXECUTION_PROVIDERS=gpu but onnxruntime fell back to "
                f"{self.providers}: CUDAExecutionProvider is not active (driver or CUDA "
                "libraries missing?)")
        self.inputs = [_spec(i) for i in self.session.get_inputs()]
        self.outputs = [_spec(o) for o in self.session.get_outputs()]
        self.output_names = [o.name for o in self.outputs]
        self.token_outputs = _token_outputs(self.session.get_inputs(), self.session.get_outputs())
        """Outputs that may carry the inputs' token axis -> their rank (``_token_outputs``)."""
        problems = card_problems(card, self.inputs, self.outputs)
        if problems:  # the card is half the request schema: it must describe this graph
            raise ModelLoadError(f"the card does not match the graph of {path.name}: "
                                 + "; ".join(problems))
        self.row_input = self._row_input()
        self.output_labels: dict[str, list[str]] = {}
        """Column labels of outputs converted from sequences of maps (ZipMap)."""
        self._zipmap_keys: dict[str, list[Any]] = {}
        self._tensors_only = all(o.type.startswith("tensor(")
                                 for o in self.session.get_outputs())
        """Every output is a tensor (no ZipMap sequence): outputs are used as they come."""
        log.info("model %s:%s loaded with providers %s", card.name, card.version, self.providers)

    def _open(self, threads: int | None = None) -> ort.InferenceSession:
        options = session_options(self.settings, self.graph_optimised_offline, threads)
        self.custom_ops = register_custom_ops(options, self.path)  # onnxruntime-extensions
        try:
            session = ort.InferenceSession(str(self.path), options, providers=self._asked)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelLoadError(f"onnxruntime cannot load {self.path.name}: {exc}") from exc
        return for_card(session, self.card)

    def pair_run(self, threads: int) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
        """``run`` on a second session of this graph whose calls use ``threads`` intra-op
        threads (opened by the first call of this method): two calls at once on it take a
        CPU each, where two on ``session`` would share, and contend for, its one thread
        pool. It holds the weights a second time."""
        if self.pair_session is None:
            self.pair_session = self._open(threads)
        session, names = self.pair_session, self.output_names

        def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            values = session.run(names, feeds)
            return dict(zip(names, values)) if self._tensors_only else \
                self._as_tensors(names, values)
        return run

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
        """One session call. ``feeds`` must match the graph's inputs (name -> array).

        Every output comes back as an array: a non-tensor output (a converter's ZipMap, a
        list of ``{label: probability}`` per row) becomes a [rows, labels] float array whose
        column labels are kept in ``output_labels``.
        """
        names = outputs or self.output_names
        values = self.session.run(names, feeds)
        if self._tensors_only:
            return dict(zip(names, values))
        return self._as_tensors(names, values)

    def _as_tensors(self, names: list[str], values: list[Any]) -> dict[str, np.ndarray]:
        return {name: value if isinstance(value, np.ndarray) else self._as_tensor(name, value)
                for name, value in zip(names, values)}

    def _as_tensor(self, name: str, value: Any) -> np.ndarray:
        if isinstance(value, list) and value and isinstance(value[0], dict):
            keys = self._zipmap_keys.get(name)
            if keys is None:
                keys = self._zipmap_keys[name] = list(value[0])
                self.output_labels[name] = [str(k) for k in keys]
            return np.array([[row[k] for k in keys] for row in value], dtype=np.float32)
        return np.asarray(value)

    def warmup(self) -> None:
        """One inference on zeros so the first real request pays no lazy initialisation."""
        feeds = {}
        for spec in self.inputs:
            shape = [1 if not isinstance(d, int) else d for d in spec.shape]
            dtype = object if spec.dtype == "str" else np.dtype(spec.dtype)
            feeds[spec.name] = np.zeros(shape, dtype=dtype) if dtype is not object \
                else np.full(shape, "", dtype=object)
        self.run(feeds)
