"""Keep warm instances on the version their ``MODEL_URI`` pointer names.

On Cloud Functions the upload event reaches the storage-triggered function, not the
instances serving HTTP; the roll-out rewrites ``models/NAME/LATEST`` there. A serving
instance started with ``MODEL_URI=.../LATEST`` re-reads that small object every
``MODEL_POLL_SECONDS`` and, when it names another version, loads it beside the served
model, checks it, warms it up and swaps (the same steps as a roll-out, minus the pointer
write). A version that fails is logged once and skipped until the pointer changes again.
"""

from __future__ import annotations

import logging
import threading

from functions.errors import ModelLoadError
from functions.events.outcome import Outcome
from functions.events.rollout import Rollout
from functions.loading.pointer import resolve_model_uris

log = logging.getLogger(__name__)


class PointerFollower:
    """Polls the pointer in a daemon thread; ``check()`` is one poll (tests call it)."""

    def __init__(self, rollout: Rollout) -> None:
        self.rollout = rollout
        self.settings = rollout.settings
        self.last: tuple[str, str] | None = None
        self._stop = threading.Event()

    def check(self) -> Outcome:
        """Read the pointer once and follow it if it moved."""
        try:
            target = resolve_model_uris(self.settings, self.rollout.stores)
        except ModelLoadError as exc:  # storage hiccup or a bad pointer: try next time
            return Outcome("unchanged", f"pointer unreadable: {exc.message}")
        if target == self.last:
            return Outcome("unchanged", "pointer has not moved")
        self.last = target
        try:
            model = self.rollout.prepare(*target)
        except ModelLoadError as exc:
            self.last = None  # transient: retry at the next poll
            return Outcome("unchanged", f"download failed: {exc.message}")
        if isinstance(model, Outcome):
            if model.action == "refused":
                log.error("pointer names %s, refused: %s", target[0], model.detail)
            return model
        return self.rollout.swap_in(model, model_uri=target[0])

    def run(self) -> None:
        interval = self.settings.model_poll_seconds
        while not self._stop.wait(interval):
            if self.rollout.holder.forked:  # the arbiter never serves: leave it to the worker
                return
            try:
                outcome = self.check()
            except Exception:  # a bug must not end the polling (or the process)
                log.exception("following the model pointer failed")
                continue
            if outcome.action == "rolled_out":
                log.info("followed the pointer: %s", outcome.detail)

    def start(self) -> None:
        threading.Thread(target=self.run, name="pointer-follow", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
