"""Merge concurrent requests for one model version into one model call.

Event-driven, no polling and no timer at low load: a request that finds the model idle runs
at once; requests that arrive while a call is in flight queue, and when it ends the queue
is taken whole (up to ``max_rows`` rows) as the next call. So batches form exactly when
the model is busy, and a request waits at most for the call ahead of it (Ray Serve's
``@serve.batch`` queue, without its fixed wait).

A merge is one concatenate per input, one call, and a split by row offsets (PyTriton's
``batch``). Rows identical across requests are computed once. Token inputs (``pads``:
input name -> pad value) are re-padded to the longest item of the merge, and outputs that
carry the token axis (as the graph declares it: OnnxModel.token_outputs) are cut back to
each request's own length. A merge of token inputs is sorted by length and cut into calls
within the memory budget and its padding bound (functions.model.cuts), so short sentences
are not padded to a long one. If a merged call fails (one request holds a value the model
refuses), every request of it runs again alone, so the failure stays with its own request.
A request cancelled while it waits is dropped from its batch. Under load, ``wait_bound``
(the model's fixed cost per call, capped by BATCH_MAX_WAIT_MS) lets a small queue fill
before the next call. The batcher serves the event loop that first used it; calls from any
other loop (event handlers run their own) go straight to the model. A merge takes requests
up to ``budget.max_rows`` rows and ``budget.tokens`` real tokens.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from functions import metrics, telemetry
from functions.dedupe import dedupe_feeds
from functions.model.cuts import Budget, cut_by_length, padded_length, run_cuts, token_lengths
from functions.model.lanes import Lanes
from functions.model.merging import compatible, merge, split

Feeds = dict[str, np.ndarray]
Call = Callable[[Feeds], Awaitable[Feeds]]
CallCuts = Callable[[Feeds, list[np.ndarray], np.ndarray], Awaitable[Feeds]]


@dataclass
class _Waiting:
    feeds: Feeds
    rows: int
    tokens: int
    """Rows times the token length (rows for inputs without tokens)."""
    future: asyncio.Future[Feeds]
    since: float = field(default_factory=time.perf_counter)
    span: Any = None
    """Its ``model.queue`` span while tracing is on (functions.telemetry)."""


class Batcher:
    """The queue in front of one model version's calls."""

    def __init__(self, call: Call, budget: Budget, pads: dict[str, int] | None = None,
                 wait_bound: Callable[[], float] = lambda: 0.0,
                 call_cuts: CallCuts | None = None,
                 token_outputs: dict[str, int] | None = None, lanes: Lanes | None = None) -> None:
        self.call = call
        self.call_cuts = call_cuts
        """Runs a merge's cuts in one go off the loop (else: one ``call`` per cut)."""
        self.lanes = lanes
        """Where ``call_cuts`` runs cuts two at a time: the next merge is formed as soon as
        one of them is free, not once the merge before it is done (None: one at a time)."""
        if lanes is not None:
            lanes.on_idle = self._lane_free
        self.budget = budget
        self.max_rows = budget.max_rows
        self.pads = pads or {}
        self.token_outputs = token_outputs or {}
        """Outputs that may carry the token axis of ``pads`` (OnnxModel.token_outputs)."""
        self.wait_bound = wait_bound
        self._last_rows = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._queue: deque[_Waiting] = deque()
        self._busy = False
        self._drainer: asyncio.Task[None] | None = None
        self._nudge = asyncio.Event()  # for the drainer: a lane freed, a merge settled, ...

    def serves_this_loop(self) -> bool:
        """Whether this call may queue here: the server's loop (the main thread's) only.
        Event handlers run private loops in worker threads: their calls go straight to the
        model. A loop that has closed (tests run several) hands the batcher to the next."""
        if threading.current_thread() is not threading.main_thread():
            return False
        loop = asyncio.get_running_loop()
        if self.loop is None or (self.loop.is_closed() and not self._busy and not self._queue):
            self.loop, self._nudge = loop, asyncio.Event()
        return loop is self.loop

    async def submit(self, feeds: Feeds) -> Feeds:
        """The outputs for ``feeds``, computed alone or merged with concurrent requests."""
        if not self.serves_this_loop():
            return await self.call(feeds)
        if not self._busy:
            self._busy = True
            try:
                return await self._one(feeds)
            finally:
                self._busy = False
                self._kick()
        rows = len(next(iter(feeds.values())))
        waiting = _Waiting(feeds, rows, rows * max(1, padded_length(feeds, self.pads)),
                           asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        self._nudge.set()
        if telemetry.tracer is None:
            return await waiting.future  # cancelled while waiting: skipped when its turn comes
        waiting.span = telemetry.tracer.queued(rows)
        try:
            return await waiting.future
        finally:
            waiting.span.end()

    async def _one(self, feeds: Feeds) -> Feeds:
        metrics.histogram("batch_rows", len(next(iter(feeds.values()))),
                          "rows per model call (requests merged)")
        return await self.call(feeds)

    def _kick(self) -> None:
        if self._queue and not self._busy:
            self._busy = True
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    def _take(self) -> list[_Waiting]:
        group: list[_Waiting] = []
        rows = tokens = 0
        limit = self.budget.tokens if self.pads else None
        while self._queue and (not group or (
                rows + self._queue[0].rows <= self.max_rows
                and (limit is None or tokens + self._queue[0].tokens <= limit))):
            waiting = self._queue.popleft()
            if waiting.future.done():  # cancelled (client gone) while it waited
                continue
            group.append(waiting)
            rows += waiting.rows
            tokens += waiting.tokens
        return group

    async def _drain(self) -> None:
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                self._nudge.clear()
                if self._queue and (not running or self.lanes is not None
                                    and not self.lanes.busy()):
                    await self._fill()
                    for group in compatible(self._take(), self.pads):
                        task = asyncio.get_running_loop().create_task(self._settle(group))
                        running.add(task)
                        task.add_done_callback(partial(self._settled, running))
                    await asyncio.sleep(0)  # their first steps: merges handed to the lanes
                elif running:
                    await self._nudge.wait()
                else:
                    return
        finally:
            self._busy = False
            if self._queue:  # arrived after the last take, before busy was released
                self._kick()

    def _settled(self, running: set[asyncio.Task[None]], task: asyncio.Task[None]) -> None:
        running.discard(task)
        self._nudge.set()

    def _lane_free(self) -> None:
        """From a lane's thread: the drainer may start the next merge."""
        with suppress(RuntimeError):  # the loop closed meanwhile (tests run several)
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self._nudge.set)

    async def _fill(self) -> None:
        """Under load (the last call merged requests) and with fewer rows queued than it
        took, give arrivals up to ``wait_bound()`` seconds to join (0: never wait)."""
        bound = self.wait_bound()
        queued = sum(w.rows for w in self._queue)
        if bound > 0 and self._last_rows > 1 and queued < min(self._last_rows, self.max_rows):
            await asyncio.sleep(bound)

    async def _settle(self, group: list[_Waiting]) -> None:
        """Run the group; whatever happens, no request of it is left waiting."""
        try:
            with nullcontext() if telemetry.tracer is None else telemetry.tracer.merged(
                    [w.span for w in group], sum(w.rows for w in group)):
                await self._run(group)
        except BaseException as exc:
            for w in group:
                if not w.future.done():
                    w.future.set_exception(exc if isinstance(exc, Exception)
                                           else RuntimeError("batch interrupted"))
            if not isinstance(exc, Exception):
                raise

    async def _run(self, group: list[_Waiting]) -> None:
        now = time.perf_counter()
        self._last_rows = sum(w.rows for w in group)
        for w in group:
            metrics.observe("batch_queue_wait", now - w.since, "time requests waited to merge")
        if len(group) == 1:
            await self._deliver(group[0], self._one(group[0].feeds))
            return
        parts = [w.feeds for w in group]
        merged = merge(parts, self.pads)
        total = len(next(iter(merged.values())))
        unique, inverse = dedupe_feeds(merged)
        try:
            out = await self._by_length(unique)
        except Exception:  # one request's bad value: each runs alone, keeping its own error
            for w in group:
                await self._deliver(w, self._alone(w.feeds))
            return
        if unique is not merged:
            out = {k: v[inverse] if v.ndim and v.shape[0] == len(next(iter(unique.values())))
                   else v for k, v in out.items()}
        lengths = [padded_length(p, self.pads) for p in parts] if self.pads else [0] * len(parts)
        for w, part in zip(group, split(out, [w.rows for w in group], lengths, total,
                                          self.token_outputs)):
            if not w.future.done():
                w.future.set_result(part)

    def _alone(self, feeds: Feeds) -> Awaitable[Feeds]:
        """One request's call on its own (its merge failed); in the lanes when there are
        lanes, where the model's thread may be taken for a while."""
        if self.lanes is None or self.call_cuts is None:
            return self.call(feeds)
        lengths = token_lengths(feeds, self.pads)
        return self.call_cuts(feeds, [np.arange(len(lengths))], lengths)

    async def _by_length(self, feeds: Feeds) -> Feeds:
        """A merge's outputs; token rows sorted by length and cut within the budget."""
        if not self.pads:
            return await self._one(feeds)
        lengths = token_lengths(feeds, self.pads)
        cuts = cut_by_length(lengths, self.budget)
        if len(cuts) == 1 and self.lanes is None:
            return await self._one(feeds)
        if self.call_cuts is None:
            return await run_cuts(self._one, feeds, cuts, self.pads, lengths,
                                  token_outputs=self.token_outputs)
        for index in cuts:
            metrics.histogram("batch_rows", len(index), "rows per model call (requests merged)")
        return await self.call_cuts(feeds, cuts, lengths)

    @staticmethod
    async def _deliver(waiting: _Waiting, result: Awaitable[Feeds]) -> None:
        try:
            value = await result
        except Exception as exc:
            if not waiting.future.done():
                waiting.future.set_exception(exc)
            return
        if not waiting.future.done():
            waiting.future.set_result(value)
