"""The transport-neutral core: decode -> lookups -> dedupe -> one model call -> predictions.

Every adapter (HTTP rows, Open Inference Protocol, events, Lambda) calls this. A single
prediction is a batch of one. ``strict`` batches are all-or-nothing (any bad instance fails
the call with its status, 422 for bad content); non-strict batches report bad items per
index and score the rest. An item only the model can find wrong (an id outside an
embedding table) is isolated from its batch (functions.model.isolation) and fails alone.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from functions import metrics
from functions.dedupe import dedupe, dedupe_feeds
from functions.errors import ItemError, Problem, ServingError, ValidationFailed
from functions.loading.holder import ModelHolder
from functions.model.isolation import MODEL_ERRORS, run_isolating
from functions.model.onnx_model import OnnxModel
from functions.model.runner import ModelRunner, Runners
from functions.one_row import OneRow
from functions.predictions import Columns, columns_in_order, rows_of_columns, shape_columns
from functions.rows import Plan, plan_for
from functions.tabular import Decoded, Schema

MAX_REPORTED_PROBLEMS = 50
_CALIBRATING: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


@atexit.register
def _let_calibrations_finish(timeout: float = 10.0) -> None:
    """At interpreter exit, wait (bounded) for a cost-curve measurement still running: it
    is inside onnxruntime, and the interpreter's teardown would free the session under it
    (the process then dies with "terminate called without an active exception" and loses
    its buffered output). Forked workers leave through functions.loading.fork_exit."""
    for thread in list(_CALIBRATING):
        thread.join(timeout)


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
    columns: Columns | None = None
    """``columns=True``: the predictions one field at a time in request order (None at a
    failed row); ``items`` is then empty (``failures`` says which rows failed)."""


class PredictionService:
    """Scores instances with the holder's current model."""

    def __init__(self, holder: ModelHolder, runners: Runners,
                 enricher: Enricher | None = None) -> None:
        self.holder = holder
        self.runners = runners
        self.enricher = enricher
        self._plans: weakref.WeakKeyDictionary[OnnxModel, Plan] = weakref.WeakKeyDictionary()
        self._current: tuple[OnnxModel, Plan, ModelRunner, OneRow | None] | None = None
        """The last model served, with its plan, its runner and its one-row answerer (where
        its plan has one): one identity check per request."""

    def plan(self, model: OnnxModel) -> Plan:
        """How instances become this model's inputs (built once per loaded model)."""
        plan = self._plans.get(model)
        if plan is None:
            extra = (self.enricher.optional_features(), self.enricher.extra_fields()) \
                if self.enricher is not None and model.row_input is not None else ()
            plan = self._plans[model] = plan_for(model, *extra)
        return plan

    def prepare(self) -> None:
        """The loader calls it when a model is ready: its plan is built now (a tokenizer loads
        at cold start, not on the first request), and its cost curve is measured in a
        thread of its own, off the path of the first requests."""
        model = self.holder.model
        if model is not None:
            self.plan(model)
            self._calibrate_later(model)

    def row_width(self) -> int | None:
        """The width of the current model's rows when they are plain float features (a
        tabular model without lookups): a body that is one matrix of numbers that wide may
        be decoded without Python objects (functions.http.numeric_body). None otherwise,
        or before the first prediction."""
        one = self._current[3] if self._current is not None else None
        return one.schema.width if one is not None else None  # OneRow.applies: such a plan

    def runner(self, model: OnnxModel) -> ModelRunner:
        """The model's runner; a version seen for the first time (a roll-out) is measured."""
        self._calibrate_later(model)
        return self.runners(model)

    def _calibrate_later(self, model: OnnxModel) -> None:
        runner = self.runners(model)
        if not runner.measures or runner.measuring:
            return
        runner.measuring = True
        plan = self.plan(model)
        thread = threading.Thread(target=runner.calibrate, args=(plan.sample, plan.pads()),
                                  name="calibrate", daemon=True)
        _CALIBRATING.add(thread)
        thread.start()

    async def run_feeds(self, model: OnnxModel,
                        feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One model call through the model's runner (inline or in a thread)."""
        return await self.runner(model).run(feeds)

    async def run_unique(self, model: OnnxModel, matrix: np.ndarray,
                         ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(unique rows, inverse, outputs): identical rows scored once, in one model call."""
        unique, inverse = dedupe(matrix)
        outputs = await self.run_feeds(model, {model.row_input.name: unique})  # type: ignore[union-attr]
        count_model_rows(len(unique))
        return unique, inverse, outputs

    def predict_one(self, instances: Any) -> tuple[dict[str, Any], str] | None:
        """(prediction, model version) when ``instances`` is one clean row that
        functions.one_row answers; None otherwise, and then ``predict`` answers. Only once a
        request has gone through ``predict`` with the current model (which builds its
        plan and runner and starts its calibration)."""
        current = self._current
        one = current[3] if current is not None else None
        if one is None or type(instances) is not list or len(instances) != 1 \
                or one.model is not self.holder.model:
            return None
        item = one.answer(instances)
        if item is None:
            return None
        count_received(1)
        count_model_rows(1)
        return item, one.model.card.version

    async def predict(self, instances: Sequence[Any] | np.ndarray, *, strict: bool,
                      may_hold_bools: bool = True, columns: bool = False) -> BatchResult:
        """Score ``instances``; see the module docstring for strict vs per-item errors.

        ``may_hold_bools``: whether the instances' JSON may hold booleans (functions.tabular);
        ``instances`` may be a numeric matrix already (``row_width``);
        ``columns``: answer as columns (``BatchResult.columns``).
        """
        model = self.holder.model or await self.holder.get()  # no await once loaded
        current = self._current
        if current is not None and current[0] is model:
            _, plan, runner, _ = current
        else:  # a model seen for the first time (or after a swap): look its parts up once
            plan, runner = self.plan(model), self.runner(model)
            one = OneRow(model, plan, runner) if OneRow.applies(plan) else None  # type: ignore[arg-type]
            self._current = (model, plan, runner, one)
        batch = plan.decode(instances, may_hold_bools)
        failures = {i: ItemError(p) for i, p in batch.problems.items()} \
            if batch.problems else {}
        if strict and failures:
            raise _validation_error(failures)
        n = len(instances)
        ok_rows = _without(n, failures)
        if batch.table is not None and plan.looks_up and len(ok_rows):
            known = len(failures)
            await self.enricher.enrich(instances, batch.table, plan.schema,  # type: ignore[union-attr]
                                       ok_rows, failures)
            if strict and failures:
                raise _first_failure(failures)
            if len(failures) != known:
                ok_rows = _without(n, failures)
        count_received(n)
        if len(ok_rows) == 0:
            items = [] if columns else [failures[i] for i in range(n)]
            return BatchResult(items, 0, failures, model.card.version,  # type: ignore[arg-type]
                               Columns({}) if columns else None)
        feeds = batch.feeds if len(ok_rows) == n else \
            {name: a[ok_rows] for name, a in batch.feeds.items()}
        unique, inverse = dedupe_feeds(feeds)
        rows = len(next(iter(unique.values())))
        try:  # the common case in one call; a refusal is isolated to its rows
            outputs, kept, refused = await runner.run(unique), np.arange(rows), {}
        except MODEL_ERRORS as exc:
            outputs, kept, refused = await run_isolating(runner, unique, exc)
        count_model_rows(rows)
        version = model.card.version
        cols = None
        if outputs is not None:
            kept_feeds = unique if not refused else {k: a[kept] for k, a in unique.items()}
            outputs = plan.finish(outputs, kept_feeds)
            cols = shape_columns(model.card, outputs, len(kept), model.output_labels)
        if not failures and not refused and unique is feeds and not batch.notes:
            if columns:
                return BatchResult([], n, failures, version, cols)
            return BatchResult(rows_of_columns(cols, n), n, failures, version)  # type: ignore[arg-type]
        src = _request_order(n, ok_rows, inverse, kept, refused, failures)
        if strict and failures:
            raise _validation_error(failures)
        unique_rows = len(kept) + len(refused)
        if columns:
            return BatchResult([], unique_rows, failures, version,
                               columns_in_order(cols, src, batch.notes))
        items: list[dict[str, Any] | ItemError] = [failures.get(i) for i in range(n)]  # type: ignore[misc]
        preds = rows_of_columns(cols, len(kept)) if cols is not None else []
        notes = batch.notes
        for row, j in enumerate(src.tolist()):
            if j >= 0:
                items[row] = {**preds[j], **notes[row]} if row in notes else preds[j]
        return BatchResult(items, unique_rows, failures, version)


def _request_order(n: int, ok_rows: np.ndarray, inverse: np.ndarray, kept: np.ndarray,
                   refused: dict[int, Any], failures: dict[int, ItemError]) -> np.ndarray:
    """For each instance, the kept unique row that answers it (-1: it failed). Rows the
    model refused are added to ``failures``."""
    slot = np.full(len(inverse), -1, dtype=np.intp)  # unique row -> its place among kept
    slot[kept] = np.arange(len(kept))
    src = np.full(n, -1, dtype=np.intp)
    src[ok_rows] = slot[inverse]
    for row, u in zip(ok_rows.tolist(), inverse.tolist()):
        if slot[u] < 0:
            why = refused[u]
            failures[row] = ItemError([Problem(why.message, row, why.input)])
    return src


def count_received(n: int) -> None:
    """Count instances received for scoring (every path: rows, v2 tensors, events)."""
    metrics.inc("predict_rows_total", n, "instances received")


def count_model_rows(n: int) -> None:
    """Count rows sent to the model after dedupe (every path)."""
    metrics.inc("predict_model_rows_total", n, "rows sent to the model after dedupe")


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
