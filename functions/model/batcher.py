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
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from functions import metrics, telemetry
from functions.dedupe import dedupe_feeds
from functions.model.cuts import Budget, cut_by_length, on_token_axis, run_cuts, token_lengths

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


def _length(feeds: Feeds, pads: dict[str, int]) -> int:
    return max((feeds[name].shape[1] for name in pads if name in feeds), default=0)


def merge(parts: list[Feeds], pads: dict[str, int]) -> Feeds:
    """One feed per input: the parts concatenated, token inputs padded to the longest."""
    longest = max(_length(p, pads) for p in parts) if pads else 0
    merged = {}
    for name in parts[0]:
        arrays = [p[name] for p in parts]
        if name in pads and any(a.shape[1] < longest for a in arrays):
            rows = sum(len(a) for a in arrays)
            out = np.full((rows, longest, *arrays[0].shape[2:]), pads[name],
                          dtype=np.result_type(*arrays))
            lo = 0
            for a in arrays:  # each part's tokens at its rows, the rest left as padding
                out[lo:lo + len(a), :a.shape[1]] = a
                lo += len(a)
            merged[name] = out
        else:
            merged[name] = np.concatenate(arrays)
    return merged


def split(outputs: Feeds, sizes: list[int], lengths: list[int], total: int,
          token_outputs: dict[str, int]) -> list[Feeds]:
    """Each part's rows of every output; those of ``token_outputs`` (OnnxModel's: name ->
    declared rank) cut back to the part's own token length where the merge padded them."""
    bounds = np.cumsum([0, *sizes])
    longest = max(lengths, default=0)
    parts: list[Feeds] = []
    for k, length in enumerate(lengths):
        lo, hi = bounds[k], bounds[k + 1]
        part = {}
        for name, out in outputs.items():
            if out.ndim == 0 or out.shape[0] != total:
                part[name] = out  # no batch axis: every part gets it whole
                continue
            rows = out[lo:hi]
            if length < longest and on_token_axis(token_outputs, name, rows, longest):
                rows = rows[:, :length]
            part[name] = rows
        parts.append(part)
    return parts


def _shape_key(feeds: Feeds, pads: dict[str, int]) -> tuple:
    """What must be equal for two requests to be concatenated: every item shape, but the
    token axis of padded inputs."""
    return tuple((name, a.shape[2:] if name in pads else a.shape[1:])
                 for name, a in feeds.items())


def compatible(group: list[_Waiting], pads: dict[str, int]) -> list[list[_Waiting]]:
    """The group split into runs that can be concatenated (same item shapes)."""
    runs: dict[tuple, list[_Waiting]] = {}
    for w in group:
        runs.setdefault(_shape_key(w.feeds, pads), []).append(w)
    return list(runs.values())


class Batcher:
    """The queue in front of one model version's calls."""

    def __init__(self, call: Call, budget: Budget, pads: dict[str, int] | None = None,
                 wait_bound: Callable[[], float] = lambda: 0.0,
                 call_cuts: CallCuts | None = None,
                 token_outputs: dict[str, int] | None = None) -> None:
        self.call = call
        self.call_cuts = call_cuts
        """Runs a merge's cuts in one go off the loop (else: one ``call`` per cut)."""
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

    def serves_this_loop(self) -> bool:
        """Whether this call may queue here: the server's loop (the main thread's) only.
        Event handlers run private loops in worker threads: their calls go straight to the
        model. A loop that has closed (tests run several) hands the batcher to the next."""
        if threading.current_thread() is not threading.main_thread():
            return False
        loop = asyncio.get_running_loop()
        if self.loop is None or (self.loop.is_closed() and not self._busy and not self._queue):
            self.loop = loop
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
        waiting = _Waiting(feeds, rows, rows * max(1, _length(feeds, self.pads)),
                           asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
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
        try:
            while self._queue:
                await self._fill()
                for group in compatible(self._take(), self.pads):
                    if group:
                        await self._settle(group)
        finally:
            self._busy = False
            if self._queue:  # arrived after the last take, before busy was released
                self._kick()

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
                await self._deliver(w, self.call(w.feeds))
            return
        if unique is not merged:
            out = {k: v[inverse] if v.ndim and v.shape[0] == len(next(iter(unique.values())))
                   else v for k, v in out.items()}
        lengths = [_length(p, self.pads) for p in parts] if self.pads else [0] * len(parts)
        for w, part in zip(group, split(out, [w.rows for w in group], lengths, total,
                                          self.token_outputs)):
            if not w.future.done():
                w.future.set_result(part)

    async def _by_length(self, feeds: Feeds) -> Feeds:
        """A merge's outputs; token rows sorted by length and cut within the budget."""
        if not self.pads:
            return await self._one(feeds)
        lengths = token_lengths(feeds, self.pads)
        cuts = cut_by_length(lengths, self.budget)
        if len(cuts) == 1:
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
