"""Work that runs beside a model's session build: it needs the fetched files, not the session.

A text model's tokenizer is parsed while onnxruntime builds the session, instead of after
it. The thread that runs the callbacks ends before ``build`` returns, so the holder's fork
guard, held around the build, never lets a fork meet it. In one process the two hardly
overlap: the session build holds the GIL most of its time, and so does the tokenizer's
parse (MiniLM, 2 vCPU: 106-113 ms together against 102-107 ms one after the other). Where
the files arrive before the build can start (gunicorn's arbiter, waiting for the early
fetch), ``now`` runs the callbacks then, and the build's thread finds their work done.
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
        beside = threading.Thread(target=self.now, args=(path, card),
                                  name="model-load-beside", daemon=True)
        beside.start()
        try:
            return build()
        finally:
            beside.join()

    def now(self, path: Path, card: ModelCard) -> None:
        """The callbacks, in this thread: ahead of the build, where the files are there
        before the session can be built (``early_fetch.take``); a failure is logged."""
        for callback in self.callbacks:
            try:
                callback(path, card)
            except Exception:  # a head start only: what it prepares is made again later
                log.exception("beside the session build: %s failed", callback)
