"""Work that runs beside a model's session build: it needs the fetched files, not the session.

A text model's tokenizer is parsed while onnxruntime builds the session, instead of after
it. The thread that runs the callbacks ends before ``build`` returns, so the holder's fork
guard, held around the build, never lets a fork meet it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from functions.config.card import ModelCard

log = logging.getLogger(__name__)
T = TypeVar("T")
Callback = Callable[[Path, ModelCard], None]


class BesideBuild:
    """The callbacks, each called as ``callback(model_path, card)`` beside every build."""

    def __init__(self) -> None:
        self.callbacks: list[Callback] = []

    def build(self, build: Callable[[], T], path: Path, card: ModelCard) -> T:
        """``build()``'s result, the callbacks having run beside it in a thread of their own
        (joined before this returns, whether ``build`` succeeded or not)."""
        if not self.callbacks:
            return build()
        beside = threading.Thread(target=self._run, args=(path, card),
                                  name="model-load-beside", daemon=True)
        beside.start()
        try:
            return build()
        finally:
            beside.join()

    def _run(self, path: Path, card: ModelCard) -> None:
        for callback in self.callbacks:
            try:
                callback(path, card)
            except Exception:  # a head start only: what it prepares is made again later
                log.exception("beside the session build: %s failed", callback)
