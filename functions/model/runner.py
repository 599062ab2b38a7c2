"""How one loaded model is called: on the event loop or in a thread, alone or merged.

Per model version, one runner. Where a call runs: expected to finish within the inline
budget (the model's cost curve, functions.model.cost), it runs on the event loop, where a
thread hop would cost more than a small model's whole batch; longer, in a worker thread,
so the loop keeps accepting requests. Before the curve is measured, calls of up to
``UNMEASURED_INLINE_ROWS`` rows run inline.

The curve is measured in every mode but on Lambda, so that BATCHING=off too keeps slow
calls off the event loop. Whether concurrent requests are merged (functions.model.batcher):
``BATCHING=off`` never; ``on`` always; ``auto`` (the default) only where the curve says it
pays: a call too slow for the loop, and a row at least ``MIN_GAIN`` times cheaper inside a
batch than alone (token inputs: a call too slow for the loop suffices; their merges are cut
by length where padding would cost more than a call, from the curve of the session the
cuts run on; a packed graph's by tokens). Measured once per version, off the request path.

Every call fits the memory budget (MODEL_CALL_MEMORY_MB, functions.model.cuts): a request
over it runs as several calls, token rows sorted by length; ``finish`` (the plan's pooling)
runs per call and the answers come back in the request's order.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np

from functions import metrics, telemetry
from functions.config.settings import Settings
from functions.model.batcher import Batcher
from functions.model.cost import CostCurve, measure
from functions.model.cuts import (
    Budget,
    Finish,
    Joined,
    cut_by_bytes,
    cut_by_length,
    run_cuts,
    run_cuts_now,
    shared_rows,
    token_lengths,
    tokens_aligned,
)
from functions.model.lanes import Lanes
from functions.model.onnx_model import OnnxModel
from functions.telemetry import spans

log = logging.getLogger(__name__)
UNMEASURED_INLINE_ROWS = 16
UNTIMED_MASK = 7
"""``run_now`` times one call in 8 (calls & 7 == 0) for the cost curve: the curve follows
the machine from those, and the other seven skip two clock reads and the update, a share
of a small model's request worth keeping (docs/benchmarks.md)."""
MIN_GAIN = 1.5
Feeds = dict[str, np.ndarray]
Run = Callable[[Feeds], Feeds]


class ModelRunner:
    """Runs one model; counts its calls; merges requests when batching is on."""

    def __init__(self, model: OnnxModel, settings: Settings) -> None:
        self.model = model
        self.budget = settings.inline_budget_ms / 1000.0
        self.mode = "off" if settings.aws_lambda_function_name else settings.batching
        self.max_rows = max_rows = settings.batch_max_rows
        self.call_budget = Budget.of(settings.model_call_memory_mb, max_rows, model.packing)
        self.pads: dict[str, int] = {}  # token inputs -> pad value (the plan's): cut by length
        self.max_wait = settings.batch_max_wait_ms / 1000.0
        self.curve: CostCurve | None = None
        self.batcher: Batcher | None = None
        self.measures = not settings.aws_lambda_function_name  # in every mode: the curve
        # decides what runs on the loop (not on Lambda: one request at a time, no loop)
        self.measuring = False  # its measurement started (by the service, in a thread)
        self.reason = "not measured yet" if self.measures else "BATCHING=off (Lambda)"
        self.calls = 0
        self.inline_rows = UNMEASURED_INLINE_ROWS  # the most rows a call may run inline
        self._thread: ThreadPoolExecutor | None = None  # the one thread calls leave the
        # loop for (on first use): one call's memory at once, one allocator arena
        self.calls_at_once = settings.calls_at_once
        self.lanes: Lanes | None = None  # merges' cuts two at a time (CALLS_AT_ONCE=2)
        self.pair_threads = settings.intra_op_threads // 2
        self.pair_bytes = settings.pair_session_mb << 20
        self._pair: Run | None = None  # the pair session's run, if any

    def runs_inline(self, rows: int) -> bool:
        """Whether a call of ``rows`` rows is expected to fit the inline budget."""
        return rows <= self.inline_rows

    def _follow_curve(self) -> None:
        """``inline_rows`` from the curve as it is now (after it is measured or rescaled)."""
        curve = self.curve
        if curve is None:
            self.inline_rows = UNMEASURED_INLINE_ROWS
        elif curve.per_row > 0:
            self.inline_rows = int((self.budget / curve.scale - curve.fixed) // curve.per_row)
        else:
            self.inline_rows = sys.maxsize if curve.expected(1) <= self.budget else 0
        if self.batcher is not None and self.pads:  # merging text: a call on the loop holds
            self.inline_rows = 0  # every request up while it runs, and no merge forms

    async def call(self, feeds: Feeds) -> Feeds:
        """One model call, on the loop or in a thread (see the module docstring)."""
        n, started = _rows(feeds), time.perf_counter()
        run = self._run_of(n)
        if self.runs_inline(n):
            return self._count(n, started, run(feeds))
        out = await asyncio.get_running_loop().run_in_executor(self._executor(), run, feeds)
        return self._count(n, started, out)

    async def call_cuts(self, feeds: Feeds, cuts: list[np.ndarray],
                        lengths: np.ndarray) -> Feeds:
        """A merge's cuts as calls one after another in the model's thread (on the loop
        when the whole fits the inline budget): the next cut never waits for the loop;
        with CALLS_AT_ONCE=2, in the two lanes (functions.model.lanes)."""
        if self.runs_inline(_rows(feeds)):
            return run_cuts_now(self._timed, feeds, cuts, self.pads, lengths,
                                token_outputs=self.model.token_outputs)
        if self.lanes is not None:
            return await asyncio.wrap_future(self.submit_cuts(feeds, cuts, lengths))
        work = spans.in_context(partial(run_cuts_now, self._timed, feeds, cuts, self.pads,
                                        lengths, token_outputs=self.model.token_outputs))
        return await asyncio.get_running_loop().run_in_executor(self._executor(), work)

    def submit_cuts(self, feeds: Feeds, cuts: list[np.ndarray],
                    lengths: np.ndarray) -> Future[Feeds]:
        """A merge's cuts queued in the lanes, from any thread; their outputs when done."""
        pair, wide = spans.in_context(self._counted_pair), spans.in_context(self._timed)
        return self.lanes.submit(Joined(feeds, self.pads, lengths, self.model.token_outputs),
                                 cuts, lengths, pair, wide)

    def _counted_pair(self, feeds: Feeds) -> Feeds:
        """One of two calls at once, on a lane's thread and the pair session when there is
        one; counted, not timed: beside another call, its time is not the model's alone."""
        n = _rows(feeds)
        return self._count(n, None, self._run_of(n, self._pair)(feeds))

    def _timed(self, feeds: Feeds) -> Feeds:
        """One call on this thread, counted and timed for the curve."""
        n, started = _rows(feeds), time.perf_counter()
        return self._count(n, started, self._run_of(n)(feeds))

    def _run_of(self, rows: int, run: Run | None = None) -> Run:
        """``run`` (None: the model's), in a ``model.call`` span of ``rows`` rows if traced."""
        run = run or self.model.run
        return run if telemetry.tracer is None else telemetry.tracer.model_call(run, rows)

    def _executor(self) -> ThreadPoolExecutor:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="model")
        return self._thread

    def run_now(self, feeds: Feeds, rows: int, finish: Finish | None = None) -> Feeds | None:
        """The outputs of ``rows`` rows (``finish``-ed, when given) computed now, on the
        calling thread, when that is where ``run`` would compute them too (no merging,
        within the inline budget); else None, and the caller awaits ``run``."""
        if self.batcher is not None or rows > self.inline_rows:  # not ``runs_inline``: one
            return None  # call less on the one-row path
        started = None if self.calls & UNTIMED_MASK else time.perf_counter()
        out = self._count(rows, started, self.model.run(feeds) if telemetry.tracer is None
                          else telemetry.tracer.model_call(self.model.run, rows)(feeds))
        return out if finish is None else finish(out, feeds)

    async def run(self, feeds: Feeds, finish: Finish | None = None) -> Feeds:
        """The outputs for ``feeds`` (``finish``-ed, when given), in one call or, over the
        budget or padded to waste, several; through the batcher when merging is on."""
        if self.pads and not tokens_aligned(feeds, self.pads):  # tensors fed as sent (Open
            # Inference Protocol), no one token layout: one call, the model says what is wrong
            out = await self.call(feeds)
            return out if finish is None else finish(out, feeds)
        if self.pads:
            if _rows(feeds) > 1:  # one row is one call, whatever its length
                lengths = token_lengths(feeds, self.pads)
                cuts = cut_by_length(lengths, self.call_budget)
                if len(cuts) > 1:
                    return await run_cuts(self._submit, feeds, cuts, self.pads, lengths,
                                          finish, together=self.batcher is not None,
                                          token_outputs=self.model.token_outputs)
        else:
            size = sum(a.nbytes for a in feeds.values())
            if size > self.call_budget.input_bytes and shared_rows(feeds) > 1:
                cuts = cut_by_bytes(_rows(feeds), size // _rows(feeds), self.call_budget)
                return await run_cuts(self._submit, feeds, cuts, {}, None, finish,
                                      token_outputs={})
        out = await self._submit(feeds)
        return out if finish is None else finish(out, feeds)

    async def _submit(self, feeds: Feeds) -> Feeds:
        if self.batcher is not None:
            return await self.batcher.submit(feeds)
        return await self.call(feeds)

    def _count(self, n: int, started: float | None, out: Feeds) -> Feeds:
        """Count one finished call of ``n`` rows; fold its time into the curve if timed."""
        self.calls += 1
        metrics.inc("model_calls_total", 1, "model calls (after merging requests)")
        if self.curve is not None and started is not None:
            self.curve.observe(n, time.perf_counter() - started)
            self._follow_curve()
        return out

    def calibrate(self, sample: Callable[[int], Feeds], pads: dict[str, int]) -> None:
        """Measure the cost curve on ``sample(rows)`` feeds and decide on merging; what fails
        after the measurement (a bug) is logged with its traceback and named in ``reason``."""
        try:
            self.curve = measure(self.model.run, sample)
            self._follow_curve()
        except Exception as exc:  # a graph that rejects the sample: stay unmerged
            self.reason = f"cost not measurable: {type(exc).__name__}: {exc}"
            log.warning("batching stays off for %s: %s", self.model.card.name, self.reason)
            return
        try:
            self._decide(sample, pads)
        except Exception as exc:  # not only a thread's traceback on stderr: the model would
            self.reason = f"calibration failed: {type(exc).__name__}: {exc}"  # run unmerged
            log.exception("batching of %s: %s", self.model.card.name, self.reason)

    def _decide(self, sample: Callable[[int], Feeds], pads: dict[str, int]) -> None:
        tokens = int(token_lengths(sample(1), pads)[0]) if pads else 0
        if pads:  # calls cut where padding costs more than a call (functions.model.cuts)
            self._cut_by(self.curve, tokens)
        slow, gain = self.curve.expected(1) > self.budget, self.curve.gain()
        # token rows: length-sorted cuts bound their padding, so merging pays off the loop
        pays = slow and (gain >= MIN_GAIN or bool(pads))
        if self.mode == "on" or (self.mode == "auto" and pays):
            if self.calls_at_once > 1 and pads:
                self.lanes = Lanes(lambda fn: self._executor().submit(fn),
                                   self.call_budget.tokens)
            self.batcher = Batcher(self.call, self.call_budget, pads, self._wait_bound,
                                   self.call_cuts, self.model.token_outputs, self.lanes,
                                   self.submit_cuts)  # (used only with lanes)
            self._follow_curve()
        self.reason = (f"BATCHING={self.mode}: one row costs {self.curve.expected(1) * 1e3:.3f} ms "
                       f"({'over' if slow else 'within'} the inline budget), {gain:.2f}x cheaper "
                       f"in a batch of 16" + (", token inputs" if pads else ""))
        pair = self._open_pair(sample) if pads else None  # (after merging is on: it takes
        if pair is not None:  # a while) its calls are the cuts: its cost decides them
            self._cut_by(pair, tokens)

    def _cut_by(self, curve: CostCurve, tokens: int) -> None:
        """Cut merges where padding costs more than a call of ``curve`` (in padded tokens)."""
        self.call_budget = replace(self.call_budget, call_tokens=(
            curve.fixed / max(curve.per_row, 1e-12) * tokens))
        if self.batcher is not None:
            self.batcher.budget = self.call_budget

    def _open_pair(self, sample: Callable[[int], Feeds]) -> CostCurve | None:
        """The pair session two cuts at once run on (PAIR_SESSION_MB), or None: the model's."""
        if self.calls_at_once < 2 or self.pair_threads < 1 or not self.pair_bytes \
                or self.model.providers != ["CPUExecutionProvider"] \
                or self.model.path.stat().st_size > self.pair_bytes:
            return None
        try:
            curve = measure(pair := self.model.pair_run(self.pair_threads), sample)
        except Exception as exc:  # memory, most likely: the cuts share the one session
            log.warning("no pair session for %s: %r", self.model.card.name, exc)
            self.model.pair_session = None  # opened but not measurable: not kept, unused
            return None
        self._pair = pair
        return curve

    def _wait_bound(self) -> float:
        """How long a small queue may wait for company: never longer than one call's fixed
        cost (waiting more than a call saves cannot pay), nor BATCH_MAX_WAIT_MS."""
        return min(self.max_wait, self.curve.fixed * self.curve.scale) if self.curve else 0.0

    def describe(self) -> dict[str, Any]:
        return {"mode": self.mode, "merging": self.batcher is not None, "reason": self.reason,
                "max_rows": self.max_rows, "max_wait_ms": self.max_wait * 1e3,
                "pair_session": self._pair is not None, "calls": self.calls,
                "cost": self.curve.describe() if self.curve else None}


def _rows(feeds: Feeds) -> int:
    first = next(iter(feeds.values()), None)
    return len(first) if first is not None and first.ndim else 1


class Runners:
    """The runner of each loaded model, created on first use, dropped with its model."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._by_model: weakref.WeakKeyDictionary[OnnxModel, ModelRunner] = \
            weakref.WeakKeyDictionary()

    def __call__(self, model: OnnxModel) -> ModelRunner:
        runner = self._by_model.get(model)
        if runner is None:
            runner = self._by_model[model] = ModelRunner(model, self.settings)
        return runner
