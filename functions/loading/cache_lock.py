"""An exclusive lock on one cache entry, shared by an instance's processes, never inherited.

gunicorn's arbiter starts the model download, then forks the worker; both use the same
MODEL_CACHE_DIR, so one downloads and verifies while the other waits and then finds the file
in place. ``flock`` gives that across processes, but its lock belongs to the open file
description, and fork copies descriptors: a worker forked while the arbiter's load thread
held the lock would share it, with no thread of its own left to release it, and its own
load would wait on it forever (issue 11). So a forked child closes, right after fork, every
descriptor this module has open: it holds nothing, and waits for the parent's download like
any other process. The registry lock keeps a fork from falling between an ``open`` and its
registration.

Waiting is bounded: after ``wait_seconds`` the caller goes on without the lock. Downloads are
atomic renames and verified by sha256, so a second concurrent download costs time and
bandwidth, never correctness.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_registry = threading.Lock()
_open: set[int] = set()  # descriptors of locks held or awaited by this process


@contextmanager
def cache_lock(path: Path, wait_seconds: float) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block.

    Yields True when the lock is held, False when ``wait_seconds`` passed while another
    process held it (the block then runs unlocked). Never inherited by a forked child.
    """
    with _registry:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        _open.add(fd)
    try:
        yield _acquire(fd, wait_seconds)
    finally:
        with _registry:
            if fd in _open:  # closing the descriptor releases the lock
                _open.discard(fd)
                os.close(fd)


def _acquire(fd: int, wait_seconds: float) -> bool:
    deadline = time.monotonic() + wait_seconds
    pause = 0.005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


def _before_fork() -> None:
    _registry.acquire()


def _after_fork_parent() -> None:
    _registry.release()


def _after_fork_child() -> None:
    global _registry
    for fd in _open:  # the parent's: its threads release them, ours must not keep them
        try:
            os.close(fd)
        except OSError:
            pass
    _open.clear()
    _registry = threading.Lock()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent,
                    after_in_child=_after_fork_child)
