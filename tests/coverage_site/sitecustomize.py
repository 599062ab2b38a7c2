"""For ``make coverage`` only, which puts this folder on PYTHONPATH: a process about to die
by a signal it raises on itself with the default action saves its coverage data first.

uvicorn re-raises SIGTERM once its graceful shutdown is done, with the handler it found
restored; in a gunicorn worker that is the default action, so the worker ends killed by
the signal, past every atexit handler, coverage.py's included.
"""

import os
import signal

if os.environ.get("COVERAGE_PROCESS_CONFIG") or os.environ.get("COVERAGE_PROCESS_START"):
    _raise_signal = signal.raise_signal

    def _saving_raise_signal(signum: int) -> None:
        if signal.getsignal(signum) == signal.SIG_DFL:
            try:
                import coverage

                cov = coverage.Coverage.current()
                if cov is not None:
                    cov.stop()
                    cov.save()
            except Exception:  # noqa: BLE001 - measuring must never change how it ends
                pass
        _raise_signal(signum)

    signal.raise_signal = _saving_raise_signal
