"""Test-only: make gunicorn's arbiter fork its worker at the worst moment for the model load.

Put this folder on PYTHONPATH of the production server (functions-framework's command line)
with ``FORK_GATE=download`` and ``FORK_GATE_CACHE=<MODEL_CACHE_DIR>``. Before gunicorn forks,
the arbiter waits until a process holds a lock on a file in the cache and has written the
first bytes of a download there: gunicorn then forks with a download in progress, the case
that hung. This only delays gunicorn's fork (a slow machine's timing); nothing of the
function's code is changed. It prints ``fork gate: ...`` to stderr saying whether the moment
was reached (tests assert it was), and gives up after FORK_GATE_WAIT seconds.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def _locked_inodes() -> set[int]:
    """Inodes with a lock on them now, from /proc/locks (flock, POSIX and OFD locks)."""
    inodes = set()
    with open("/proc/locks") as fh:
        for line in fh:
            fields = line.split()
            ident = next((f for f in fields if f.count(":") == 2), None)
            if ident:
                inodes.add(int(ident.rsplit(":", 1)[1]))
    return inodes


def _downloading(cache: Path) -> bool:
    if not cache.is_dir():
        return False
    locked = _locked_inodes()
    held = any(p.stat().st_ino in locked for p in cache.glob("*.lock"))
    return held and any(p.stat().st_size > 0 for p in cache.glob(".part-*"))


def _gate() -> str:
    mode, cache = os.environ["FORK_GATE"], Path(os.environ["FORK_GATE_CACHE"])
    deadline = time.monotonic() + float(os.environ.get("FORK_GATE_WAIT", "30"))
    while time.monotonic() < deadline:
        try:
            if _downloading(cache):
                return f"fork gate: forked with the {mode} in progress"
        except OSError:  # a file vanished between glob and stat: look again
            pass
        time.sleep(0.001)
    return f"fork gate: the {mode} moment never came; forked anyway"


def _install() -> None:
    import gunicorn.arbiter

    spawn = gunicorn.arbiter.Arbiter.spawn_worker

    def gated_spawn(self: gunicorn.arbiter.Arbiter) -> int:
        print(_gate(), file=sys.stderr, flush=True)
        return spawn(self)

    gunicorn.arbiter.Arbiter.spawn_worker = gated_spawn


if os.environ.get("FORK_GATE"):
    _install()
