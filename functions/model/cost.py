"""A model's cost curve: seconds per call as ``fixed + per_row * rows``, measured.

Measured once per loaded model (two batch sizes, after warm-up) and kept current by the
calls it serves: each call's time rescales the curve (an exponential moving average of
observed / expected), so a busier machine shifts it without re-measuring. It decides two
things: whether a call may run on the event loop (``expected(rows)`` within the inline
budget) and whether merging concurrent requests pays (``gain``: the per-row cost of a row
alone over its cost inside a batch of ``BATCH_PROBE`` rows).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

BATCH_PROBE = 16
MAX_STEP = 4.0
Feeds = dict[str, np.ndarray]


@dataclass
class CostCurve:
    fixed: float
    """Seconds every call costs whatever its size (dispatch, kernel launches)."""
    per_row: float
    """Seconds each further row adds."""
    scale: float = 1.0

    def expected(self, rows: int) -> float:
        return self.scale * (self.fixed + self.per_row * rows)

    def observe(self, rows: int, seconds: float) -> None:
        """Fold one served call into the curve. One call's ratio counts at most
        ``MAX_STEP``: a call the OS preempted says nothing about the model, and must not
        send the next hundred calls of a small model off the event loop."""
        base = self.fixed + self.per_row * rows
        if base > 0:
            self.scale = 0.9 * self.scale + 0.1 * min(seconds / base, MAX_STEP)

    def gain(self, rows: int = BATCH_PROBE) -> float:
        """How many times cheaper a row is inside a batch of ``rows`` than alone."""
        alone = self.fixed + self.per_row
        batched = self.fixed / rows + self.per_row
        return alone / batched if batched > 0 else 1.0

    def describe(self) -> dict[str, float]:
        return {"fixed_ms": round(self.fixed * 1e3, 4), "per_row_ms": round(self.per_row * 1e3, 4),
                "batch_gain": round(self.gain(), 2)}


def measure(call: Callable[[Feeds], object], sample: Callable[[int], Feeds],
            repeat: int = 5) -> CostCurve:
    """The curve from timing ``call`` on ``sample(1)`` and ``sample(BATCH_PROBE)``: the
    fastest of ``repeat`` calls at each size, since a call can only be slowed by what
    else the machine runs (a cold start shares it with the platform and other
    instances), and one slowed probe would turn merging on or off for good."""
    times = {}
    for rows in (1, BATCH_PROBE):
        feeds = sample(rows)
        call(feeds)  # first call at this size pays allocations: not counted
        runs = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            call(feeds)
            runs.append(time.perf_counter() - t0)
        times[rows] = min(runs)
    per_row = max(0.0, (times[BATCH_PROBE] - times[1]) / (BATCH_PROBE - 1))
    return CostCurve(max(0.0, times[1] - per_row), per_row)
