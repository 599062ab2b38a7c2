"""Processes the suite started that are still alive: found by a marker in their environment.

``mark()`` puts a variable unique to this run into ``os.environ`` at session start; every
process a test starts inherits it (servers pass ``os.environ`` on), and so do their own
children, even once orphaned and re-parented to init. ``alive()`` lists the processes that
carry the marker, and this process's own children (a test may start one with an
environment of its own), except this one: at session end, after every fixture has stopped
what it started, that list must be empty.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

MARKER = "TESTS_RUN_ID"


def mark() -> str:
    """Set (once) and return this run's marker value."""
    return os.environ.setdefault(MARKER, uuid.uuid4().hex)


def _stat(proc: Path) -> tuple[str, int, str]:
    """(state, parent pid, command line) of ``/proc/PID``."""
    stat = (proc / "stat").read_text()
    state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
    cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    return state, int(ppid), cmd


def alive(run_id: str) -> dict[int, str]:
    """pid -> command line of each live (not zombie) process carrying ``run_id``, or a
    child of this process."""
    needle = f"{MARKER}={run_id}".encode()
    me = os.getpid()
    found: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == me:
            continue
        try:
            state, ppid, cmd = _stat(proc)
            if ppid != me and needle not in (proc / "environ").read_bytes().split(b"\0"):
                continue
        except OSError:  # gone meanwhile, or another user's
            continue
        if state != "Z":
            found[int(proc.name)] = cmd
    return found


def survivors(run_id: str, grace: float = 10.0) -> dict[int, str]:
    """``alive(run_id)`` once processes that are still exiting have had ``grace`` seconds."""
    deadline = time.monotonic() + grace
    found = alive(run_id)
    while found and time.monotonic() < deadline:
        time.sleep(0.2)
        found = alive(run_id)
    return found
