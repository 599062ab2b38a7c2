"""Two lanes that run merges' cuts, two model calls at once (CALLS_AT_ONCE=2), continuously.

A merge's cuts (functions.model.cuts) are queued here, largest first, and two threads (the
model's and the one beside it) each take the next cut that fits beside the other's: the
padded tokens of the two calls in flight stay within one call's budget, as a single call's
would. A lane that finds no cut of its merge left takes the next merge's at once, so at the
tail of a merge one CPU does not idle while the other finishes the last cut: the batcher
forms the next merge as soon as a lane asks for work, from the requests that queued
meanwhile, instead of once both lanes are done (continuous batching, as vLLM and TEI
schedule a GPU). The lane asks in its own thread first (``refill``), then the event loop
(``on_idle``).

A merge's answers are placed once its last cut is done, on the lane that ran it; if a cut
fails, its merge's cuts not yet started are dropped and the error is raised once none of
its cuts runs (the batcher then runs each request alone, to isolate the failure).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field

import numpy as np

from functions.model.cuts import Feeds, Joined

Start = Callable[[Callable[[], None]], object]
"""Runs a function in a thread (a one-thread executor's ``submit``)."""


@dataclass(eq=False)
class _Merge:
    joined: Joined
    run: Callable[[Feeds], Feeds]
    left: int
    """Cuts not finished yet (started or not)."""
    done: list[tuple[np.ndarray, Feeds, int]] = field(default_factory=list)
    failed: BaseException | None = None
    future: Future[Feeds] = field(default_factory=Future)


@dataclass(eq=False)
class _Cut:
    merge: _Merge
    index: np.ndarray
    size: int
    """Padded tokens: rows times the longest row's length."""


class Lanes:
    """Two lanes running the cuts of every merge ``submit`` is given, within ``tokens``
    padded tokens at once: the model's thread (``first``: how to run a function there) and
    a thread of their own beside it."""

    def __init__(self, first: Start, tokens: int,
                 on_idle: Callable[[], None] = lambda: None) -> None:
        self._beside: ThreadPoolExecutor | None = None
        self.starts: tuple[Start, Start] = (first, self._start_beside)
        self.tokens = tokens
        self.on_idle = on_idle
        """Called (from a lane's thread) when a lane finds no cut to take and stops."""
        self.refill: Callable[[], bool] | None = None
        """Asked first (from that thread): whether it queued a merge here itself
        (``submit``), which the lane then takes without waiting for ``on_idle``'s caller."""
        self._state = threading.Condition()
        self._pending: list[_Cut] = []
        self._held = 0
        self._running = [False, False]

    def _start_beside(self, fn: Callable[[], None]) -> object:
        if self._beside is None:
            self._beside = ThreadPoolExecutor(1, thread_name_prefix="model-beside")
        return self._beside.submit(fn)

    def busy(self) -> bool:
        """Whether both lanes are running (a new merge would only wait for one)."""
        with self._state:
            return all(self._running)

    def submit(self, joined: Joined, cuts: list[np.ndarray], lengths: np.ndarray,
               run: Callable[[Feeds], Feeds],
               wide: Callable[[Feeds], Feeds] | None = None) -> Future[Feeds]:
        """The outputs of every row of ``joined``'s feeds, ``cuts`` run with ``run`` in the
        lanes (after the cuts of merges submitted earlier); placed in row order. One cut
        that finds both lanes idle runs with ``wide`` (a call on both CPUs) instead, in the
        first lane, the second held meanwhile: the next merge waits for it, and grows."""
        sized = sorted(((len(index) * int(lengths[index].max()), k)
                        for k, index in enumerate(cuts)), reverse=True)
        alone = None
        with self._state:
            if wide is not None and len(cuts) == 1 and not any(self._running):
                self._running = [True, True]  # the second lane held while it runs
                self._held += sized[0][0]
                alone = _Cut(_Merge(joined, wide, 1), cuts[0], sized[0][0])
        if alone is not None:
            self.starts[0](lambda: self._wide(alone))
            return alone.merge.future
        merge = _Merge(joined, run, len(cuts))
        start = []
        with self._state:
            self._pending.extend(_Cut(merge, cuts[k], size) for size, k in sized)
            for lane in (0, 1):
                if not self._running[lane] and len(start) < len(cuts):
                    self._running[lane] = True
                    start.append(lane)
            self._state.notify_all()
        for lane in start:
            self.starts[lane](lambda lane=lane: self._lane(lane))
        return merge.future

    def _next(self, lane: int) -> _Cut | None:
        """The next cut for ``lane`` (under the lock): the first queued that fits beside
        the cut in flight (alone, the first); None, and the lane stops, when none is
        queued."""
        while True:
            pending = self._pending
            if not pending:
                self._running[lane] = False
                return None
            cut = next((c for c in pending if self._held + c.size <= self.tokens),
                       None if self._held else pending[0])
            if cut is not None:
                pending.remove(cut)
                self._held += cut.size
                return cut
            self._state.wait()  # the other lane's cut holds what this one needs

    def _wide(self, cut: _Cut) -> None:
        """``cut`` alone on both CPUs; then the first lane goes on, and the second if it
        has cuts to take."""
        try:
            self._run(cut)
        finally:
            with self._state:
                self._running[1] = bool(self._pending)
                second = self._running[1]
            if second:
                self.starts[1](lambda: self._lane(1))
            self._lane(0)

    def _lane(self, lane: int) -> None:
        """Run one cut in ``lane``'s thread, then queue the lane's next turn there: a call
        waiting for that thread (a request run alone) is not kept waiting by a lane that
        always has a next cut."""
        with self._state:
            cut = self._next(lane)
        if cut is None:
            if self.refill is None or not self.refill():
                self.on_idle()
            return
        try:
            self._run(cut)
        finally:
            try:
                self.starts[lane](lambda: self._lane(lane))
            except RuntimeError:  # its thread's executor is shut down: the process exits
                with self._state:
                    self._running[lane] = False

    def _run(self, cut: _Cut) -> None:
        merge = cut.merge
        try:
            if merge.failed is None:
                part, length = merge.joined.part(cut.index)
                merge.done.append((cut.index, merge.run(part), length))
        except BaseException as exc:  # noqa: BLE001 - raised to the merge's caller
            merge.failed = exc
        with self._state:
            self._held -= cut.size
            merge.left -= 1
            if merge.failed is not None:  # its cuts not started are dropped
                dropped = [c for c in self._pending if c.merge is merge]
                for c in dropped:
                    self._pending.remove(c)
                merge.left -= len(dropped)
            finished = merge.left == 0
            self._state.notify_all()
        if finished:
            _finish(merge)


def _finish(merge: _Merge) -> None:
    """The merge's answer, or its error, to its caller (who may have given up on it)."""
    future = merge.future
    with suppress(InvalidStateError):  # cancelled: the awaiting task was cancelled
        if merge.failed is not None:
            future.set_exception(merge.failed)
            return
        try:
            for index, out, length in merge.done:
                merge.joined.place(index, out, length)
        except Exception as exc:  # noqa: BLE001 - raised to the merge's caller
            future.set_exception(exc)
            return
        future.set_result(merge.joined.outputs)
