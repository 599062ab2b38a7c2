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
With lanes (functions.model.lanes), a lane that finds no cut left forms the next merge
itself, in its thread, from what queued (``_refill``): it does not wait for the event
loop, busy writing answers and reading requests, to take its turn. A request cancelled
while it waits is dropped from its batch. Under load, ``wait_bound`` (the model's fixed
cost per call, capped by BATCH_MAX_WAIT_MS) lets a small queue fill before the next call.
The batcher serves the event loop that first used it; calls from any other loop (event
handlers run their own) go straight to the model. A merge takes requests up to
``budget.max_rows`` rows and ``budget.tokens`` real tokens.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from contextlib import nullcontext, suppress

import numpy as np

from functions import metrics, telemetry
from functions.model.cuts import Budget, cut_by_length, padded_length, run_cuts, token_lengths
from functions.model.lanes import Lanes
from functions.model.merging import Merged, compatible
from functions.model.waiting import Waiting, WaitQueue

Feeds = dict[str, np.ndarray]
Call = Callable[[Feeds], Awaitable[Feeds]]
CallCuts = Callable[[Feeds, list[np.ndarray], np.ndarray], Awaitable[Feeds]]
SubmitCuts = Callable[[Feeds, list[np.ndarray], np.ndarray], "Future[Feeds]"]


class Batcher:
    """The queue in front of one model version's calls."""

    def __init__(self, call: Call, budget: Budget, pads: dict[str, int] | None = None,
                 wait_bound: Callable[[], float] = lambda: 0.0,
                 call_cuts: CallCuts | None = None,
                 token_outputs: dict[str, int] | None = None, lanes: Lanes | None = None,
                 submit_cuts: SubmitCuts | None = None) -> None:
        self.call = call
        self.call_cuts = call_cuts
        """Runs a merge's cuts in one go off the loop (else: one ``call`` per cut)."""
        self.lanes = lanes
        """Where ``call_cuts`` runs cuts two at a time: the next merge is formed as soon as
        one of them is free, not once the merge before it is done (None: one at a time)."""
        self.submit_cuts = submit_cuts
        """``call_cuts`` without the await, from any thread: how a lane queues the merge it
        formed (``_refill``; None: only the drainer forms merges)."""
        if lanes is not None:
            lanes.on_idle = self._lane_free
            if submit_cuts is not None:
                lanes.refill = self._refill
        self.budget = budget
        self.max_rows = budget.max_rows
        self.pads = pads or {}
        self.token_outputs = token_outputs or {}
        """Outputs that may carry the token axis of ``pads`` (OnnxModel.token_outputs)."""
        self.wait_bound = wait_bound
        self._last_rows = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._queue = WaitQueue()
        self._busy = False
        self._drainer: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()  # merges being run and answered
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
        waiting = Waiting(feeds, rows, rows * max(1, padded_length(feeds, self.pads)),
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
        if (self._queue or self._running) and not self._busy:
            self._busy = True
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    def _take(self) -> list[Waiting]:
        return self._queue.take(self.max_rows, self.budget.tokens if self.pads else None)

    async def _drain(self) -> None:
        running = self._running
        try:
            while True:
                self._nudge.clear()
                if self._queue and (not running or self.lanes is not None
                                    and not self.lanes.busy()):
                    await self._fill()
                    for group in compatible(self._take(), self.pads):
                        self._track(self._settle(group, self._run(group)))
                    await asyncio.sleep(0)  # their first steps: merges handed to the lanes
                elif running:
                    await self._nudge.wait()
                else:
                    return
        finally:
            self._busy = False
            self._kick()  # arrived after the last take, before busy was released

    def _track(self, work: Awaitable[None]) -> None:
        task = asyncio.get_running_loop().create_task(work)  # type: ignore[arg-type]
        self._running.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._nudge.set()

    def _refill(self) -> bool:
        """From a lane's thread that found no cut left: the next merges, formed here from
        the queue as the drainer forms them, their cuts queued in the lanes at once, their
        answers left to the event loop (``_adopt``). False, and the lane asks the drainer,
        when nothing is queued, when a merge should wait for company (``wait_bound``) or is
        traced, or when the loop is gone."""
        loop = self.loop
        if loop is None or not self._queue or telemetry.tracer is not None \
                or self.wait_bound() > 0:
            return False
        group = self._take()
        for run in compatible(group, self.pads):
            merged, future = None, Future()  # type: ignore[var-annotated]
            try:
                merged = Merged.of([w.feeds for w in run], self.pads)
                future = self._into_lanes(merged.unique)
            except Exception as exc:  # noqa: BLE001 - its requests run alone, on the loop
                future.set_exception(exc)
            try:
                loop.call_soon_threadsafe(self._adopt, run, merged, future)
            except RuntimeError:  # the loop closed meanwhile (tests run several)
                return False
        return bool(group)

    def _adopt(self, group: list[Waiting], merged: Merged | None,
               future: Future[Feeds]) -> None:
        """On the loop: a merge a lane formed is answered as the drainer's are."""
        self._started(group)
        self._track(self._settle(group, self._complete(group, merged,
                                                       asyncio.wrap_future(future))))
        self._kick()  # a drainer, for the merges in flight

    def _lane_free(self) -> None:
        """From a lane's thread: the drainer may start the next merge."""
        with suppress(RuntimeError):  # the loop closed meanwhile (tests run several)
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self._nudge.set)

    async def _fill(self) -> None:
        """Under load (the last call merged requests) and with fewer rows queued than it
        took, give arrivals up to ``wait_bound()`` seconds to join (0: never wait)."""
        bound = self.wait_bound()
        if bound <= 0 or self._last_rows < 2:
            return
        if self._queue.rows() < min(self._last_rows, self.max_rows):
            await asyncio.sleep(bound)

    async def _settle(self, group: list[Waiting], work: Awaitable[None]) -> None:
        """Run the group's ``work``; whatever happens, no request of it is left waiting."""
        try:
            with nullcontext() if telemetry.tracer is None else telemetry.tracer.merged(
                    [w.span for w in group], sum(w.rows for w in group)):
                await work
        except BaseException as exc:
            for w in group:
                if not w.future.done():
                    w.future.set_exception(exc if isinstance(exc, Exception)
                                           else RuntimeError("batch interrupted"))
            if not isinstance(exc, Exception):
                raise

    def _started(self, group: list[Waiting]) -> None:
        now = time.perf_counter()
        self._last_rows = sum(w.rows for w in group)
        for w in group:
            metrics.observe("batch_queue_wait", now - w.since, "time requests waited to merge")

    async def _run(self, group: list[Waiting]) -> None:
        self._started(group)
        if len(group) == 1:
            await self._deliver(group[0], self._one(group[0].feeds))
            return
        merged = Merged.of([w.feeds for w in group], self.pads)
        await self._complete(group, merged, self._by_length(merged.unique))

    async def _complete(self, group: list[Waiting], merged: Merged | None,
                        outputs: Awaitable[Feeds]) -> None:
        """Answer the group from ``outputs`` (``merged.unique``'s). If they fail (one
        request's bad value), each request runs alone, keeping its own error."""
        try:
            out = await outputs
        except Exception:
            for w in group:
                await self._deliver(w, self._alone(w.feeds))
            return
        assert merged is not None  # outputs came from it
        for w, part in zip(group, merged.answers(out, self.pads, self.token_outputs)):
            if not w.future.done():
                w.future.set_result(part)

    def _alone(self, feeds: Feeds) -> Awaitable[Feeds]:
        """One request's call on its own (its merge failed); in the lanes when there are
        lanes, where the model's thread may be taken for a while."""
        if self.lanes is None or self.call_cuts is None:
            return self.call(feeds)
        lengths = token_lengths(feeds, self.pads)
        return self.call_cuts(feeds, [np.arange(len(lengths))], lengths)

    def _into_lanes(self, feeds: Feeds) -> Future[Feeds]:
        """``feeds``' token rows cut by length and queued in the lanes, from any thread (the
        drainer's merges and a lane's own, ``_refill``); their outputs when done."""
        assert self.submit_cuts is not None
        lengths = token_lengths(feeds, self.pads)
        cuts = cut_by_length(lengths, self.budget)
        self._count(cuts)
        return self.submit_cuts(feeds, cuts, lengths)

    async def _by_length(self, feeds: Feeds) -> Feeds:
        """A merge's outputs; token rows sorted by length and cut within the budget."""
        if not self.pads:
            return await self._one(feeds)
        if self.lanes is not None and self.submit_cuts is not None:
            return await asyncio.wrap_future(self._into_lanes(feeds))
        lengths = token_lengths(feeds, self.pads)
        cuts = cut_by_length(lengths, self.budget)
        if len(cuts) == 1 and self.lanes is None:
            return await self._one(feeds)
        if self.call_cuts is None:
            return await run_cuts(self._one, feeds, cuts, self.pads, lengths,
                                  token_outputs=self.token_outputs)
        self._count(cuts)
        return await self.call_cuts(feeds, cuts, lengths)

    @staticmethod
    def _count(cuts: list[np.ndarray]) -> None:
        for index in cuts:
            metrics.histogram("batch_rows", len(index), "rows per model call (requests merged)")

    @staticmethod
    async def _deliver(waiting: Waiting, result: Awaitable[Feeds]) -> None:
        try:
            value = await result
        except Exception as exc:
            if not waiting.future.done():
                waiting.future.set_exception(exc)
            return
        if not waiting.future.done():
            waiting.future.set_result(value)
