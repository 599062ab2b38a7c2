"""Let a forked worker exit although onnxruntime was imported before the fork.

onnxruntime's native static destructors destroy a condition variable that, in a forked
child, still counts the parent's waiters, and ``pthread_cond_destroy`` then waits forever:
a gunicorn worker that imported onnxruntime in the arbiter hangs at exit until it is
killed. ``install()`` (called in the child right after fork) lets Python finish its own
shutdown (atexit handlers, logging flush) and then leaves with ``os._exit``, skipping only
the native destructors, with the exit status the code asked for.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys

_status = [0]
_real_exit = sys.exit


def _recording_exit(code: object = 0) -> None:
    _status[0] = code if isinstance(code, int) else (0 if code is None else 1)
    _real_exit(code)


def _leave() -> None:
    atexit.unregister(_leave)
    atexit._run_exitfuncs()  # the other handlers, still in their order
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(_status[0])


def install() -> None:
    """In a forked child: exit through ``_leave`` (idempotent)."""
    sys.exit = _recording_exit  # gunicorn reports boot failures through the exit status
    atexit.unregister(_leave)
    atexit.register(_leave)
