"""When a model load failed: retry it later (transient), or never (permanent), and say so.

A load that failed because storage or the network did (a 5xx or 429 from storage, a timeout,
a dropped connection: ``store_errors.is_transient``) is tried again after a capped,
exponentially growing wait with jitter: 1 s, 2 s, 4 s ... up to LOAD_RETRY_MAX_SECONDS,
each wait drawn from its upper half so that instances started together spread out. Any
other failure (a sha256 mismatch, an invalid graph, a card that does not match the graph)
would fail the same way again: it is not retried, and the reason says so. ``LoadFailure``
is what readiness and every request report meanwhile.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from functions.errors import ModelLoadError
from functions.loading.store_errors import is_transient

FIRST_DELAY_SECONDS = 1.0
LOADING_RETRY_AFTER = 5
"""Retry-After (s) while an attempt is running: most loads take a few seconds."""


def retry_delay(failures: int, cap: float, draw: float | None = None) -> float:
    """Seconds to wait after the ``failures``-th failed attempt: 1, 2, 4 ... capped at
    ``cap``, then drawn uniformly from the upper half (``draw`` in [0, 1) fixes the draw)."""
    ceiling = min(cap, FIRST_DELAY_SECONDS * 2.0 ** min(failures - 1, 62))
    return ceiling * (0.5 + 0.5 * (random.random() if draw is None else draw))


@dataclass(frozen=True)
class LoadFailure:
    """A failed load attempt: why, whether it is retried, and when."""

    reason: str
    transient: bool
    attempts: int
    next_at: float = 0.0
    """``time.monotonic()`` of the next attempt (transient failures only)."""

    @classmethod
    def of(cls, exc: BaseException, attempts: int, cap: float) -> LoadFailure:
        """The failure ``exc`` of attempt number ``attempts``, its next attempt scheduled."""
        reason = exc.message if isinstance(exc, ModelLoadError) else f"{type(exc).__name__}: {exc}"
        if not is_transient(exc):
            return cls(reason, False, attempts)
        return cls(reason, True, attempts, time.monotonic() + retry_delay(attempts, cap))

    def wait_seconds(self) -> float:
        """Seconds until the next attempt (0 when it is running)."""
        return max(0.0, self.next_at - time.monotonic())

    def describe(self) -> str:
        """The readiness reason (and 503 message): starts "model load failed: "."""
        if not self.transient:
            return f"model load failed: {self.reason} (permanent: not retried)"
        wait = self.wait_seconds()
        when = f"retrying in {wait:.1f}s" if wait > 0 else "retrying now"
        return (f"model load failed: {self.reason} (transient, attempt {self.attempts}; "
                f"{when})")

    def retry_after(self) -> dict[str, str]:
        """The Retry-After header for answers meanwhile; none after a permanent failure."""
        if not self.transient:
            return {}
        wait = self.wait_seconds()
        return {"Retry-After": str(max(1, math.ceil(wait)) if wait > 0 else LOADING_RETRY_AFTER)}
