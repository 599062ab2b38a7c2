"""Graceful shutdown: SIGTERM turns readiness 503 at once and lets requests in flight finish.

Platforms stop an instance with SIGTERM and kill it later (Cloud Run and Cloud Functions
gen2: 10 s). Under functions-framework's production server the arbiter (gunicorn) closes
its listening socket and passes SIGTERM to the worker, whose server (uvicorn) stops
accepting, lets the requests it holds finish, and exits. What this module adds, in the
worker:

- ``Drain.arm()`` (the Router calls it on each request; work only the first time, on the
  main thread) wraps the server's own SIGTERM handler, so SIGTERM also calls ``begin()``
  before the server sees it. Where the SIGTERM handler is not a Python callable (Lambda,
  a bare interpreter) nothing is wrapped: there is no server loop to drain.
- From ``begin()`` on, ``draining`` is true: readiness answers 503 and a request that
  arrives after it (through the short time before the server closes its socket) is
  answered 503 ``shutting_down``; requests already in flight run to their normal answer.
- ``grace_seconds`` after SIGTERM, requests still running are given up: the process
  interrupts itself (SIGINT, which the server takes as "stop waiting") so that it exits
  before the platform's SIGKILL, with nothing half-written (event outputs are committed
  only on success, see functions.events.scoring).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)


class Drain:
    """The process's shutdown state and the count of requests in flight."""

    def __init__(self, grace_seconds: float,
                 give_up: Callable[[], None] | None = None) -> None:
        self.grace_seconds = grace_seconds
        self.draining = False
        self.since: float | None = None
        self.in_flight = 0
        self.armed = False
        self._give_up = give_up or (lambda: os.kill(os.getpid(), signal.SIGINT))

    def arm(self) -> None:
        """Wrap the server's SIGTERM handler (once; only the main thread may)."""
        if self.armed or threading.current_thread() is not threading.main_thread():
            return
        self.armed = True
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):
            return

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            self.begin()
            previous(signum, frame)

        signal.signal(signal.SIGTERM, on_sigterm)

    def begin(self) -> None:
        """Start draining (idempotent): readiness 503 now, give up after the grace."""
        if self.draining:
            return
        self.draining, self.since = True, time.monotonic()
        log.warning("SIGTERM: draining %d request(s) in flight, %gs grace",
                    self.in_flight, self.grace_seconds)
        timer = threading.Timer(self.grace_seconds, self._expire)
        timer.daemon = True
        timer.start()

    def _expire(self) -> None:
        if self.in_flight:
            log.error("shutdown grace of %gs is over: giving up %d request(s) in flight",
                      self.grace_seconds, self.in_flight)
        self._give_up()
