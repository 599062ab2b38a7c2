"""How one loaded model is called: on the event loop, or in a worker thread.

A call expected to finish within ``inline_budget_ms`` runs on the event loop (a thread hop
costs ~0.1 ms, more than a small model's whole batch); a longer one runs in a worker thread
so other requests keep flowing. The expectation is the model's measured cost per row, a
moving average over calls of ``MEASURE_FROM_ROWS`` rows or more, kept here per model
version (a new version starts a new runner and measures afresh). The cross-request
batcher will sit in front of ``run``.
"""

from __future__ import annotations

import asyncio
import time
import weakref

import numpy as np

from functions.model.onnx_model import OnnxModel

MEASURE_FROM_ROWS = 16


class ModelRunner:
    """Runs one model; ``seconds_per_row`` is its measured cost (None until measured)."""

    def __init__(self, model: OnnxModel, inline_budget_ms: float) -> None:
        self.model = model
        self.budget = inline_budget_ms / 1000.0
        self.seconds_per_row: float | None = None

    def runs_inline(self, rows: int) -> bool:
        """Whether a call of ``rows`` rows is expected to fit the inline budget."""
        per_row = self.seconds_per_row
        return rows <= MEASURE_FROM_ROWS or (per_row is not None and per_row * rows <= self.budget)

    async def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One model call (see the module docstring for where it runs)."""
        first = next(iter(feeds.values()), None)
        n = len(first) if first is not None and first.ndim else 1
        started = time.perf_counter()
        if self.runs_inline(n):
            out = self.model.run(feeds)
        else:
            out = await asyncio.to_thread(self.model.run, feeds)
        if n >= MEASURE_FROM_ROWS:
            cost = (time.perf_counter() - started) / n
            per_row = self.seconds_per_row
            self.seconds_per_row = cost if per_row is None else 0.8 * per_row + 0.2 * cost
        return out


class Runners:
    """The runner of each loaded model, created on first use, dropped with its model."""

    def __init__(self, inline_budget_ms: float) -> None:
        self.inline_budget_ms = inline_budget_ms
        self._by_model: weakref.WeakKeyDictionary[OnnxModel, ModelRunner] = \
            weakref.WeakKeyDictionary()

    def __call__(self, model: OnnxModel) -> ModelRunner:
        runner = self._by_model.get(model)
        if runner is None:
            runner = self._by_model[model] = ModelRunner(model, self.inline_budget_ms)
        return runner
