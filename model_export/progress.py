"""Progress bars for long steps (verify over many rows, quantise, uploads), written to stderr.

On a terminal it redraws one line; elsewhere (CI logs, pipes) it prints at most one line per
25% so logs stay short. ``quiet=True`` prints nothing.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO


class ProgressBar:
    """Counts ``advance(n)`` calls up to ``total`` and shows ``label  done/total (pct%)``."""

    def __init__(self, label: str, total: int, unit: str = "", quiet: bool = False,
                 stream: TextIO | None = None) -> None:
        self.label, self.total, self.unit = label, max(int(total), 0), unit
        self.done = 0
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self._tty = self.stream.isatty()
        self._last_draw = 0.0
        self._last_quarter = -1

    def __enter__(self) -> ProgressBar:
        self._draw(force=True)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            self.done = self.total
            self._draw(force=True)
        if self._tty and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()

    def advance(self, n: int = 1) -> None:
        """Record ``n`` more units done."""
        self.done = min(self.done + n, self.total) if self.total else self.done + n
        self._draw()

    def _draw(self, force: bool = False) -> None:
        if self.quiet:
            return
        pct = int(100 * self.done / self.total) if self.total else 100
        text = f"{self.label}  {_fmt(self.done, self.unit)}/{_fmt(self.total, self.unit)} ({pct}%)"
        if self._tty:
            now = time.monotonic()
            if force or now - self._last_draw > 0.1:
                self._last_draw = now
                self.stream.write("\r" + text)
                self.stream.flush()
            return
        quarter = pct // 25
        if quarter != self._last_quarter:
            self._last_quarter = quarter
            self.stream.write(text + "\n")
            self.stream.flush()


def _fmt(n: int, unit: str) -> str:
    if unit == "B":
        for scale, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if n >= scale:
                return f"{n / scale:.1f} {suffix}"
        return f"{n} B"
    return f"{n}{unit}"


def note(message: str, quiet: bool = False) -> None:
    """A one-line status message on stderr (stdout is kept for reports and MODEL_URI)."""
    if not quiet:
        print(message, file=sys.stderr, flush=True)
