"""The transport-neutral core: decoded items -> lookups -> dedupe -> one model call.

Every adapter (HTTP rows, Open Inference Protocol, events, Lambda) decodes its request
with a codec (functions.codecs) and calls ``predict``; a response codec answers from the
``Scored`` it returns. A single prediction is the same pipeline's early exit
(``predict_now``): one row needs no dedupe, no reordering and no await when the model
runs inline.

``strict`` batches are all-or-nothing (any bad instance fails the call with its status,
422 for bad content); non-strict batches report bad items per index and score the rest.
An item only the model can find wrong (an id outside an embedding table) is isolated
from its batch (functions.model.isolation) and fails alone.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from functions.codecs.plans import Inputs, Plan, plan_for
from functions.codecs.tabular import Decoded, Schema
from functions.dedupe import dedupe_feeds
from functions.errors import (
    ItemError,
    Problem,
    RequestError,
    first_failure,
    validation_error,
)
from functions.loading.exit_wait import let_loads_finish
from functions.loading.holder import ModelHolder
from functions.metrics import inc
from functions.model.finite import CODE as NON_FINITE_CODE
from functions.model.finite import message as non_finite_message
from functions.model.finite import non_finite_rows
from functions.model.isolation import MODEL_ERRORS, refusal_text, run_isolating
from functions.model.onnx_model import OnnxModel
from functions.model.runner import ModelRunner, Runners

_CALIBRATING: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


@atexit.register
def _let_calibrations_finish(timeout: float = 10.0) -> None:
    """At interpreter exit, wait (bounded) for a cost-curve measurement still running: it
    is inside onnxruntime, and freeing the session under it at teardown would abort the
    process. Forked workers leave through functions.loading.fork_exit."""
    let_loads_finish(timeout)  # first: a load's ready callback may start a calibration
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


@dataclass(frozen=True, slots=True)
class Serving:
    """A loaded model with the parts that serve it."""

    model: OnnxModel
    plan: Plan
    runner: ModelRunner


@dataclass(slots=True)
class Scored:
    """What the service computed for ``n`` items, in the one shape every response codec
    reads: the model's outputs for the rows it ran, and which row answers which item."""

    n: int
    outputs: dict[str, np.ndarray] | None
    """Outputs of the scored unique rows (finished by the plan: pooled embeddings), or
    None when no item was scored."""
    rows: int
    """How many rows ``outputs`` hold."""
    src: np.ndarray | None
    """Item i is answered by row ``src[i]`` of ``outputs`` (-1: it failed); None when row
    i answers item i."""
    failures: dict[int, ItemError]
    notes: dict[int, dict[str, Any]] | None
    """Per-item facts for the answer (the text plan's ``truncated``), or None."""
    unique_rows: int
    model: OnnxModel
    """The version that scored these items (a roll-out may swap models mid-request)."""


class PredictionService:
    """Scores decoded items with the holder's current model."""

    def __init__(self, holder: ModelHolder, runners: Runners,
                 enricher: Enricher | None = None) -> None:
        self.holder = holder
        self.runners = runners
        self.enricher = enricher
        self._plans: weakref.WeakKeyDictionary[OnnxModel, Plan] = weakref.WeakKeyDictionary()
        self._last: Serving | None = None
        """The model served last with its parts: one identity check per request."""

    async def model(self) -> OnnxModel:
        """The model to serve this request with (waits while the first load runs; 503 when
        it failed)."""
        return self.holder.model or await self.holder.get()

    def plan(self, model: OnnxModel) -> Plan:
        """How instances become this model's inputs (built once per loaded model)."""
        last = self._last
        if last is not None and last.model is model:
            return last.plan
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

    def runner(self, model: OnnxModel) -> ModelRunner:
        """The model's runner; a version seen for the first time (a roll-out) is measured."""
        self._calibrate_later(model)
        return self.runners(model)

    def _calibrate_later(self, model: OnnxModel) -> None:
        runner = self.runners(model)
        runner.pads = self.plan(model).pads()  # token inputs: calls cut by length
        if not runner.measures or runner.measuring:
            return
        runner.measuring = True
        plan = self.plan(model)
        thread = threading.Thread(target=runner.calibrate, args=(plan.sample, plan.pads()),
                                  name="calibrate", daemon=True)
        _CALIBRATING.add(thread)
        thread.start()

    def _serving(self, model: OnnxModel) -> Serving:
        """The plan and runner of ``model``: the last ones used, or looked up (a roll-out)."""
        last = self._last
        if last is not None and last.model is model:
            return last
        serving = self._last = Serving(model, self.plan(model), self.runner(model))
        return serving

    def predict_now(self, model: OnnxModel, inputs: Inputs, *, strict: bool) -> Scored | None:
        """``predict``'s early exit, answered without awaiting: one clean item for the model
        served last, nothing to look up, a model call that runs inline. None otherwise
        (then ``predict`` answers, and words every error: a row the model refuses is run
        again there, to be isolated)."""
        last, plan = self._last, inputs.plan
        if inputs.n != 1 or inputs.problems or last is None or last.model is not model \
                or plan is None or plan.looks_up:
            return None
        try:
            outputs = last.runner.run_now(inputs.feeds, 1, plan.finish if plan.finishes else None)
        except MODEL_ERRORS:
            return None
        if outputs is None:
            return None
        inc(RECEIVED, 1, "instances received")
        inc(MODEL_ROWS, 1, "rows sent to the model after dedupe")
        scored = Scored(1, outputs, 1, None, {}, inputs.notes, 1, model)
        return scored if non_finite_rows(outputs, 1) is None else _finite_only(scored, strict)

    async def predict(self, model: OnnxModel, inputs: Inputs, *, strict: bool) -> Scored:
        """Score ``inputs`` (decoded for ``model``); see the module docstring for strict
        vs per-item errors."""
        last = self._last
        runner = last.runner if last is not None and last.model is model \
            else self._serving(model).runner
        failures = {i: ItemError(p) for i, p in inputs.problems.items()} \
            if inputs.problems else {}
        if strict and failures:
            raise validation_error(failures)
        n, plan = inputs.n, inputs.plan
        ok_rows = _without(n, failures) if failures else None  # None: every row
        if plan is not None and plan.looks_up and (ok_rows is None or len(ok_rows)):
            failures = failures or {}
            await self.enricher.enrich(inputs.instances, inputs.table,  # type: ignore[union-attr]
                                       plan.schema, _without(n, failures),  # type: ignore[union-attr]
                                       failures)
            if strict and failures:
                raise first_failure(failures)
            ok_rows = _without(n, failures) if failures else None
        inc(RECEIVED, n, "instances received")
        if ok_rows is not None and len(ok_rows) == 0:
            return Scored(n, None, 0, np.full(n, -1, dtype=np.intp), failures, inputs.notes,
                          0, model)
        feeds = inputs.feeds if ok_rows is None else \
            {name: a[ok_rows] for name, a in inputs.feeds.items()}
        if n == 1 and ok_rows is None:  # one row: nothing to dedupe or put back in order
            unique, inverse, rows = feeds, None, 1
        else:
            unique, inverse = dedupe_feeds(feeds)
            rows = len(inverse) if unique is feeds else len(next(iter(unique.values())))
        kept, refused = None, {}
        finish = plan.finish if plan is not None and plan.finishes else None
        try:  # the common case in one call (one inline row: no await); a refusal is
            # isolated to its rows
            outputs = (runner.run_now(unique, rows, finish) if rows == 1 else None) \
                or await runner.run(unique, finish)
        except MODEL_ERRORS as exc:
            if plan is None:  # tensors fed as they are: the request is the unit
                raise RequestError(f"the model refused the inputs: {refusal_text(exc)}") \
                    from None
            outputs, kept, refused = await run_isolating(runner, unique, exc, finish)
        inc(MODEL_ROWS, rows, "rows sent to the model after dedupe")
        if kept is None:  # every row scored
            if unique is feeds and ok_rows is None:
                return _finite_only(Scored(n, outputs, rows, None, failures, inputs.notes,
                                           n, model), strict)
            kept = np.arange(rows)
        src = _request_order(n, np.arange(n) if ok_rows is None else ok_rows,
                             np.arange(n) if inverse is None else inverse, kept, refused,
                             failures)
        if strict and failures:
            raise validation_error(failures)
        return _finite_only(Scored(n, outputs, len(kept), src, failures, inputs.notes,
                                   len(kept) + len(refused), model), strict)


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
            failures[row] = ItemError([Problem(why.message, row, why.input)],
                                      code="model_refused")
    return src


def _finite_only(scored: Scored, strict: bool) -> Scored:
    """``scored``, its items whose outputs hold NaN or infinity failed (never answered as a
    prediction) and counted; a strict call raises them as the request's error."""
    found = non_finite_rows(scored.outputs, scored.rows) if scored.outputs else None
    if found is None:
        return scored
    bad, output = found
    src = np.arange(scored.n) if scored.src is None else scored.src.copy()
    hit = np.flatnonzero((src >= 0) & bad[src])
    for i in hit.tolist():
        scored.failures[i] = ItemError([Problem(non_finite_message(output), i, output)],
                                       code=NON_FINITE_CODE)
    src[hit] = -1
    inc(NON_FINITE, len(hit), "instances whose model output was NaN or infinite")
    if strict:
        raise validation_error(scored.failures)
    scored.src = src
    return scored


NON_FINITE = "predict_non_finite_total"
"""Instances failed because their model output was not finite."""
RECEIVED = "predict_rows_total"
"""Instances received for scoring (every path: rows, v2 tensors, events)."""
MODEL_ROWS = "predict_model_rows_total"
"""Rows sent to the model after dedupe (every path)."""


def _without(n: int, failures: dict[int, ItemError]) -> np.ndarray:
    """Indices 0..n-1 that have no failure, ascending."""
    if not failures:
        return np.arange(n)
    keep = np.ones(n, dtype=bool)
    keep[list(failures)] = False
    return np.flatnonzero(keep)
