"""The transport-neutral core: validate -> dedupe -> enrich -> one model call -> expand.

Every adapter (HTTP rows, Open Inference Protocol, events, Lambda) calls this. A single
prediction is a batch of one. ``strict`` batches are all-or-nothing (any bad instance fails
the call with 422); non-strict batches report bad items per index and score the rest.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from functions import metrics
from functions.dedupe import dedupe
from functions.errors import ItemError, Problem, ServingError, ValidationFailed
from functions.loading.holder import ModelHolder
from functions.model.onnx_model import OnnxModel
from functions.model.runner import Runners
from functions.predictions import shape_predictions
from functions.rows import Decoded, Schema, decode_instances

MAX_REPORTED_PROBLEMS = 50


class Enricher(Protocol):
    """Fills features that come from elsewhere (external lookups) into decoded rows.

    It writes the fetched values into ``decoded.matrix`` for rows it can serve and adds a
    Problem (with a status in ItemError) to ``failures`` for rows it cannot.
    """

    def optional_features(self) -> frozenset[str]: ...

    def extra_fields(self) -> frozenset[str]: ...

    async def enrich(self, instances: Sequence[Any], decoded: Decoded, schema: Schema,
                     rows: np.ndarray, failures: dict[int, ItemError]) -> None: ...


@dataclass
class BatchResult:
    """Per-instance outcome in request order: a prediction dict, or an ItemError."""

    items: list[dict[str, Any] | ItemError]
    unique_rows: int = 0
    failures: dict[int, ItemError] = field(default_factory=dict)
    model_version: str | None = None
    """The version that scored these items (a roll-out may swap models mid-request)."""


def schema_for(model: OnnxModel) -> Schema:
    """The row schema of a model: its card's feature names, its input's dtype."""
    row = model.row_input
    if row is None:
        raise ValidationFailed(
            "this model has no single 2-D numeric input, so it takes no row-format instances; "
            "use the Open Inference Protocol route /v2/models/{name}/infer",
            [Problem("row format unsupported for this model", None, "instances")])
    names = tuple(model.card.feature_names) or tuple(f"f{i}" for i in range(row.n_features or 0))
    return Schema(names, row.dtype, model.card.allow_nan)


class PredictionService:
    """Scores instances with the holder's current model."""

    def __init__(self, holder: ModelHolder, runners: Runners,
                 enricher: Enricher | None = None) -> None:
        self.holder = holder
        self.runners = runners
        self.enricher = enricher
        self._schemas: weakref.WeakKeyDictionary[OnnxModel, Schema] = \
            weakref.WeakKeyDictionary()

    async def run_feeds(self, model: OnnxModel,
                        feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One model call through the model's runner (inline or in a thread)."""
        return await self.runners(model).run(feeds)

    async def run_rows(self, model: OnnxModel, matrix: np.ndarray) -> dict[str, np.ndarray]:
        """One model call on a 2-D batch of rows (see ``run_feeds``)."""
        return await self.run_feeds(model, {model.row_input.name: matrix})  # type: ignore[union-attr]

    async def run_unique(self, model: OnnxModel, matrix: np.ndarray,
                         ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(unique rows, inverse, outputs): identical rows scored once, in one model call."""
        unique, inverse = dedupe(matrix)
        outputs = await self.run_rows(model, unique)
        metrics.inc("predict_model_rows_total", len(unique), "rows sent to the model after dedupe")
        return unique, inverse, outputs

    def _schema(self, model: OnnxModel) -> Schema:
        """Row schema, widened by the enricher's optional features and key fields (cached)."""
        cached = self._schemas.get(model)
        if cached is None:
            cached = schema_for(model)
            if self.enricher is not None:
                cached = Schema(cached.feature_names, cached.dtype, cached.allow_nan,
                                self.enricher.optional_features(), self.enricher.extra_fields())
            self._schemas[model] = cached
        return cached

    async def predict(self, instances: Sequence[Any], *, strict: bool,
                      may_hold_bools: bool = True) -> BatchResult:
        """Score ``instances``; see the module docstring for strict vs per-item errors."""
        model = await self.holder.get()
        schema = self._schema(model)
        decoded = decode_instances(instances, schema, may_hold_bools)
        failures = {i: ItemError(p) for i, p in decoded.problems.items()}
        if strict and failures:
            raise _validation_error(failures)
        n = len(instances)
        ok_rows = _without(n, failures)
        if self.enricher is not None and len(ok_rows):
            known = len(failures)
            await self.enricher.enrich(instances, decoded, schema, ok_rows, failures)
            if strict and failures:
                raise _first_failure(failures)
            if len(failures) != known:
                ok_rows = _without(n, failures)
        count_received(n)
        if len(ok_rows) == 0:
            return BatchResult(list(failures[i] for i in range(n)), 0, failures,
                               model.card.version)
        valid = decoded.matrix if len(ok_rows) == n else decoded.matrix[ok_rows]
        unique, inverse, outputs = await self.run_unique(model, valid)
        preds = shape_predictions(model.card, outputs, len(unique))
        if not failures and len(unique) == n:
            return BatchResult(preds, n, failures, model.card.version)  # type: ignore[arg-type]
        items: list[dict[str, Any] | ItemError] = list(failures.get(i) for i in range(n))
        for row, u in zip(ok_rows.tolist(), inverse.tolist()):
            items[row] = preds[u]
        return BatchResult(items, len(unique), failures, model.card.version)


def count_received(n: int) -> None:
    """Count instances received for scoring (every path: rows, v2 tensors, events)."""
    metrics.inc("predict_rows_total", n, "instances received")


def _without(n: int, failures: dict[int, ItemError]) -> np.ndarray:
    """Indices 0..n-1 that have no failure, ascending."""
    if not failures:
        return np.arange(n)
    keep = np.ones(n, dtype=bool)
    keep[list(failures)] = False
    return np.flatnonzero(keep)


def _validation_error(failures: dict[int, ItemError]) -> ValidationFailed:
    problems = [p for i in sorted(failures) for p in failures[i].problems]
    shown = problems[:MAX_REPORTED_PROBLEMS]
    first = shown[0]
    where = f"instances[{first.index}]" + (f".{first.field}" if first.field else "")
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return ValidationFailed(f"{where}: {first.message}{more}", shown)


def _first_failure(failures: dict[int, ItemError]) -> ServingError:
    """A strict route fails with its first failed item's status (422, 424, ...)."""
    i = min(failures)
    err = failures[i]
    return ServingError(f"instances[{i}]: {err.problems[0].message}", err.problems,
                        status=err.status, code=err.code)
