"""The requests waiting for a merge (functions.model.batcher), in arrival order.

Appended on the event loop; taken whole, up to a merge's bounds, by the batcher's drainer
on the loop or by a lane that found no cut left (functions.model.lanes), in its thread. One
lock makes a take atomic: two takers never split a merge between them or count a request
twice, and a sum of what is queued never sees the queue change under it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Feeds = dict[str, np.ndarray]


@dataclass
class Waiting:
    feeds: Feeds
    rows: int
    tokens: int
    """Rows times the token length (rows for inputs without tokens)."""
    future: asyncio.Future[Feeds]
    since: float = field(default_factory=time.perf_counter)
    span: Any = None
    """Its ``model.queue`` span while tracing is on (functions.telemetry)."""


class WaitQueue:
    """First come, first served; a request whose future is done (cancelled: its client
    went away) is dropped when its turn comes."""

    def __init__(self) -> None:
        self._items: deque[Waiting] = deque()
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._items)

    def append(self, waiting: Waiting) -> None:
        self._items.append(waiting)

    def rows(self) -> int:
        with self._lock:
            return sum(w.rows for w in self._items)

    def take(self, max_rows: int, max_tokens: int | None) -> list[Waiting]:
        """The requests at the head, up to ``max_rows`` rows and ``max_tokens`` tokens (the
        first one whatever its size)."""
        group: list[Waiting] = []
        rows = tokens = 0
        with self._lock:
            items = self._items
            while items and (not group or (
                    rows + items[0].rows <= max_rows
                    and (max_tokens is None or tokens + items[0].tokens <= max_tokens))):
                waiting = items.popleft()
                if waiting.future.done():
                    continue
                group.append(waiting)
                rows += waiting.rows
                tokens += waiting.tokens
        return group
