"""Load the model once per process, in the background, and say when it is ready.

Contract:
- ``start()`` begins the load (fetch card -> download to cache, hashed as it arrives ->
  verify sha256 -> build the session, ``while_building`` callbacks beside it -> warm up) in
  a daemon thread and returns at once; calling it again is a no-op,
  so concurrent first requests trigger exactly one load.
- ``await get()`` returns the model, waiting at most ``load_wait_seconds`` for the first
  attempt; it raises ModelNotReady (503) on time-out or when the load failed.
- A load that failed transiently (storage 5xx/429, a timeout, a dropped connection) is
  tried again in the same thread after a capped, jittered backoff (``load_retry``), until it
  succeeds or a roll-out serves a model; meanwhile readiness and every request answer 503
  with the reason and a Retry-After (``readiness``, ``retry_after``, ``require``). A
  permanent failure (sha256 mismatch, invalid graph, card not matching the graph) is not
  retried, and the reason says so. The backoff waits outside the fork guard, so a fork
  never waits for it; a process that forked stops retrying (its child loads anew).
- ``swap(model)`` replaces the served model atomically: requests that already hold the old
  model finish on it (they keep their reference).
- Fork safety: gunicorn (functions-framework's production server) imports ``main.py`` in
  the arbiter and then forks the worker. Nothing the child inherits may block it, so:
  - the arbiter (``expect_fork``) only imports before the fork, and leaves the load to the
    worker. Its network calls would cross the fork mid-use: OpenSSL's global locks (taken
    by TLS handshakes with the GIL released; a worker forked then hangs in its first
    ``SSL_CTX_new``), SDK connection pools and threads, sockets, the cache file lock. The
    download a model in object storage needs runs ahead in a process of its own
    (``early_fetch``), which the fork waits for (bounded) under the guard: the worker
    inherits its verified path and card, and no thread, socket or lock of it; the
    arbiter then imports what the worker imports first (``import_for_worker``);
  - imports, and module locks with them: the fork waits (``_session_guard``) for the
    load's imports, which the stores make up front, when they are created;
  - anywhere else (no fork expected, or none came within FORK_WAIT_SECONDS) the fork waits
    for the whole load: a fork never meets a download, a TLS handshake or a session build
    (whose thread pool would not survive it) in progress;
  - the cache file lock is never inherited (``cache_lock``); log handlers: the fork waits
    for a log line being written (``log_handlers``); SDK clients: forgotten in the child
    (``sdk_clients``); this holder's locks and events: new ones in the child, which starts
    its own load (reusing a download the arbiter verified before forking).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from functions import telemetry
from functions.config.card import ModelCard
from functions.config.settings import Settings
from functions.errors import ModelLoadError, ModelNotReady
from functions.loading import early_fetch, exit_wait, fork_exit
from functions.loading.artifacts import fetch_model
from functions.loading.beside_build import BesideBuild
from functions.loading.load_retry import LOADING_RETRY_AFTER, LoadFailure
from functions.loading.pointer import resolve_model_uris
from functions.loading.stores import Stores
from functions.model.onnx_model import OnnxModel
from functions.telemetry import spans

log = logging.getLogger(__name__)


def log_handlers(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers a record of ``logger`` reaches. The fork waits for their locks: a load
    thread writing a log line at fork time would leave the stream's buffer lock held in the
    child (which ``logging`` does not reset; it resets only the handlers' own locks), and the
    worker's first log line would wait for it forever."""
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        handlers += [h for h in current.handlers if h not in handlers]
        current = current.parent if current.propagate else None
    return handlers


class ModelHolder:
    """The process's one model, its load state, and the waiters for it."""

    def __init__(self, settings: Settings, stores: Stores,
                 build: Callable[[Path, ModelCard, Settings], OnnxModel] = OnnxModel,
                 expect_fork: bool = False) -> None:
        self.settings = settings
        self.stores = stores
        # gunicorn's arbiter: the worker it is about to fork serves, and builds the session
        self._expect_fork = expect_fork
        self._fork_seen = threading.Event()
        self._build = build
        self._model: OnnxModel | None = None
        self._failure: LoadFailure | None = None  # the last failed attempt, until one succeeds
        self._started = False
        self._lock = threading.Lock()
        self._session_guard = threading.Lock()
        self._done = threading.Event()
        self._inherited: list[OnnxModel] = []  # sessions copied by fork: never destroyed
        self.load_seconds: float | None = None
        self._forked = False  # set in a process that has forked a worker: it never serves
        # (path, card) verified by this process, or by the arbiter before it forked us
        self._fetched: tuple[Path, ModelCard] | None = None
        self._on_ready: list[Callable[[], None]] = []
        self._working = threading.Lock()  # held by an attempt: its native work and ready
        exit_wait.watch(self)  # callbacks, which teardown must not run under (exit_wait)
        self._beside = BesideBuild()  # e.g. the tokenizer parsed while the session builds
        self._log_handlers: list[logging.Handler] = []
        # methods, not bound lock methods: the child replaces its locks and may fork again
        os.register_at_fork(before=self._before_fork, after_in_parent=self._after_fork_parent,
                            after_in_child=self._after_fork_child)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Begin the load in the background unless it already began."""
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._load, name="model-load", daemon=True).start()

    def _load(self) -> None:
        t0, s, attempts = time.perf_counter(), self.settings, 0
        try:
            with self._session_guard:  # no fork mid-import (see Stores.for_uri)
                if not (self._fetched or early_fetch.pending()):  # else no store is needed
                    for uri in {s.model_uri, s.card_uri()}:
                        self.stores.for_uri(uri)
                if self._expect_fork and early_fetch.pending():  # nor mid-download (bounded)
                    early_fetch.import_for_worker(None)  # meanwhile, what the worker imports
                    self._fetched = self._fetched or early_fetch.take(s, self._beside.now)
                    if self._fetched:  # and a text model's tokenizer library
                        early_fetch.import_for_worker(self._fetched[1])
            if self._expect_fork:  # gunicorn's arbiter: no network of its own before the fork
                if self._fork_seen.wait(s.fork_wait_seconds):
                    log.debug("arbiter forked a worker; leaving the load to it")
                    return
                log.warning("no worker forked within %gs: loading the model here",
                            s.fork_wait_seconds)
            with self._session_guard:  # the serving process, after any fork: its tracing
                telemetry.start(s)  # (SDK imports, when on, never cross a fork) and project
            with spans.span("model.load", model_uri=s.model_uri):  # retries included
                while not self._attempt(t0, attempts := attempts + 1):
                    failure = self._failure
                    self._done.set()  # waiters answer now: 503 with the reason and Retry-After
                    # outside the fork guard: a fork ends the wait, and this process's retries
                    if failure is None or not failure.transient \
                            or self._fork_seen.wait(failure.wait_seconds()) or self._forked:
                        return
                    if self._model is not None:
                        log.info("a roll-out served a model meanwhile; load retries end")
                        return
        finally:
            self._done.set()

    def settle(self, timeout: float) -> None:
        """Wait, at most ``timeout`` seconds, for a load attempt in progress to end."""
        if self._working.acquire(timeout=timeout):
            self._working.release()

    def _attempt(self, t0: float, attempts: int) -> bool:
        """One try at the whole load; False when it failed (``_failure`` says how)."""
        with self._working:
            return self._attempt_now(t0, attempts)

    def _attempt_now(self, t0: float, attempts: int) -> bool:
        s = self.settings
        try:
            with self._session_guard:  # a fork now waits for the whole load (see above)
                if self._forked:
                    return True
                path, card = self._fetched = self._fetched or fetch_model(
                    s, self.stores, *resolve_model_uris(s, self.stores))  # may be a pointer
                with spans.span("session.build", model=card.name, version=card.version):
                    model = self._beside.build(lambda: self._build(path, card, s), path, card)
                if s.warmup:
                    with spans.span("warmup"):
                        model.warmup()
        except Exception as exc:  # classified, reported, never a hang
            failure = self._failure = LoadFailure.of(exc, attempts, s.load_retry_max_seconds)
            if failure.transient:
                log.warning("%s", failure.describe())
            elif isinstance(exc, ModelLoadError):
                log.error("%s", failure.describe())
            else:  # a bug or an unexpected SDK error: with its traceback
                log.exception("%s", failure.describe())
            return False
        with self._lock:  # a roll-out that swapped a model in meanwhile wins
            if self._model is not None:
                return True
            self._model, self._failure = model, None
        self.load_seconds = time.perf_counter() - t0
        log.info("model ready in %.3fs (providers %s%s)", self.load_seconds, model.providers,
                 f"; attempt {attempts}" if attempts > 1 else "")
        with spans.span("model.prepare"):  # e.g. the tokenizer, the OpenAPI document
            for callback in self._on_ready:
                callback()
        return True

    def while_building(self, callback: Callable[[Path, ModelCard], None]) -> None:
        """Call ``callback(model_path, card)`` beside each session build (per process): work
        that needs the fetched files but not the session, e.g. parsing the tokenizer."""
        self._beside.callbacks.append(callback)

    def on_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` in the loading thread after each successful load (per process)."""
        self._on_ready.append(callback)

    @property
    def forked(self) -> bool:
        """True in a process that forked a serving worker (it serves nothing itself)."""
        return self._forked

    def _before_fork(self) -> None:
        self._session_guard.acquire()
        self._log_handlers = log_handlers(log)
        for handler in self._log_handlers:  # no fork mid-write: see log_handlers
            handler.acquire()

    def _after_fork_parent(self) -> None:
        for handler in reversed(self._log_handlers):
            handler.release()
        self._forked = True
        self._fork_seen.set()
        self._session_guard.release()

    def _after_fork_child(self) -> None:
        fork_exit.install()  # onnxruntime's native teardown hangs in a forked child
        for handler in self._log_handlers:  # logging re-creates the locks of its own kinds
            try:
                handler.release()
            except RuntimeError:  # already a new, unheld lock
                pass
        self._session_guard = threading.Lock()
        self._lock = threading.Lock()
        self._working = threading.Lock()
        if self._model is not None:
            self._inherited.append(self._model)
        self._model, self._failure, self._started = None, None, False
        self._forked, self._expect_fork = False, False
        self._fork_seen = threading.Event()
        self._done = threading.Event()
        self.start()

    # -- access ----------------------------------------------------------------------
    @property
    def model(self) -> OnnxModel | None:
        """The served model, or None while loading / after a failed load."""
        return self._model

    def readiness(self) -> tuple[bool, str]:
        """(ready, reason) for /readyz."""
        if self._model is not None:
            return True, "ready"
        failure = self._failure
        if failure is not None:
            return False, failure.describe()
        return False, "model is loading"

    def retry_after(self) -> dict[str, str]:
        """Headers for a 503 answered now: a Retry-After while loading or retrying, none
        once ready or after a permanent failure."""
        if self._model is not None:
            return {}
        failure = self._failure
        return failure.retry_after() if failure else {"Retry-After": str(LOADING_RETRY_AFTER)}

    async def get(self) -> OnnxModel:
        """The model, waiting (bounded) for a load in progress."""
        model = self._model
        if model is not None:
            return model
        self.start()
        if self._failure is None:  # the first attempt is running: wait for it (bounded)
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.run_in_executor(None, self._done.wait,
                                                        self.settings.load_wait_seconds),
                                   self.settings.load_wait_seconds + 1)
        return self.require()

    def require(self) -> OnnxModel:
        """The model now, or ModelNotReady naming why not."""
        model = self._model
        if model is not None:
            return model
        failure = self._failure
        if failure is not None:
            raise ModelNotReady(failure.describe(), headers=failure.retry_after())
        raise ModelNotReady(f"model is still loading after {self.settings.load_wait_seconds:g}s",
                            headers={"Retry-After": str(LOADING_RETRY_AFTER)})

    def swap(self, model: OnnxModel) -> OnnxModel | None:
        """Serve ``model`` from now on; returns the previous one."""
        with self._lock:
            old, self._model, self._failure = self._model, model, None
        self._done.set()
        return old
