"""Running ONNX models with onnxruntime, and timing them, the way the function will.

Sessions take the serving side's options (``functions.model.sessions.session_options``:
the same thread counts, no spinning, sequential execution), changing only the graph
optimisation level a step asks for, so timings here mean what serving will see. Models
take feeds (graph input name -> array, every input); outputs come back as a dict keyed by
graph output name, the same shape every source model's ``predict`` returns.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

from functions.config.card import ModelCard
from functions.config.settings import Settings
from functions.model.packing import for_card
from functions.model.sessions import session_options

LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session(model: Path | bytes, level: str = "all", threads: int | None = None,
            save_to: Path | None = None) -> ort.InferenceSession:
    """A CPU session at optimisation ``level`` with the serving options; ``threads``
    overrides the intra-op thread count; ``save_to`` writes the optimised graph."""
    settings = Settings(intra_op_threads=threads) if threads else Settings()
    opts = session_options(settings)
    opts.graph_optimization_level = LEVELS[level]
    if save_to is not None:
        opts.optimized_model_filepath = str(save_to)
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, sess_options=opts, providers=["CPUExecutionProvider"])


class ExportedOnnx:
    """An ONNX model run on feeds; ``predict(feeds) -> {output name: array}``."""

    def __init__(self, model: Path | bytes, level: str = "all",
                 card: ModelCard | None = None) -> None:
        self.session = session(model, level)
        if card is not None:  # a packed graph: fed as the function feeds it
            self.session = for_card(self.session, card)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def predict(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run every graph input's feed (other keys are ignored)."""
        outs = self.session.run(None, {name: feeds[name] for name in self.input_names})
        return {name: np.asarray(v) for name, v in zip(self.output_names, outs, strict=True)}


def median_ms(fn: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeat`` calls, in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 3)


def session_ms(model: Path, level: str, repeat: int) -> float:
    """Median time to create a session for ``model`` at ``level`` (what a cold start pays)."""
    data = model.read_bytes()  # time the graph work, not the disk
    return median_ms(lambda: session(data, level), repeat)


def latency_ms(model: ExportedOnnx, feeds: dict[str, np.ndarray], repeat: int) -> float:
    """Median time of one ``predict`` on the batch ``feeds``."""
    return median_ms(lambda: model.predict(feeds), repeat)


def version() -> str:
    return ort.__version__
