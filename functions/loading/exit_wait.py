"""Interpreter exit waits (bounded) for model loads still at work in native code.

A load attempt builds the session, warms it up and runs its ready callbacks, one of which
starts the cost-curve calibration. The model is visible before those callbacks have run
(they need it), so a process may exit while a callback is about to start the calibration:
onnxruntime calls running under interpreter teardown abort the process (SIGABRT).
``functions.service`` calls ``let_loads_finish`` at exit before it joins the calibrations.
Nothing is waited for in an arbiter waiting for its fork, or once a load is done.
"""

from __future__ import annotations

import weakref
from typing import Protocol


class Settles(Protocol):
    def settle(self, timeout: float) -> None: ...


_WATCHED: weakref.WeakSet[Settles] = weakref.WeakSet()


def watch(holder: Settles) -> None:
    """Wait for ``holder``'s load attempts at exit (weakly held: a dropped holder is not)."""
    _WATCHED.add(holder)


def let_loads_finish(timeout: float = 10.0) -> None:
    """Wait, at most ``timeout`` seconds each, for the watched loads in progress to end."""
    for holder in list(_WATCHED):
        holder.settle(timeout)
