"""The model's files fetched ahead, in a process of their own, while gunicorn's arbiter imports.

A cold start from object storage first imports (Python, under one GIL), then downloads
(Python too: the SDK's loop over the body). In one process the two cannot overlap; in two
processes they run on two cores. So where gunicorn's arbiter is about to import everything
and fork the serving worker, ``fetch_ahead`` (main.py's first line) forks a helper, before
the heavy imports and while the process has no other thread. The helper imports the
store's SDK (which neither the arbiter nor its worker then imports at cold start) and does
what the holder's first load attempt does (``artifacts.fetch_model``: the card, through a
pointer if MODEL_URI names one; the model downloaded into MODEL_CACHE_DIR under the cache
lock, hashed as it arrives and verified; the tokenizer), writes the verified path and card
to a pipe and exits, never returning into the import that forked it.

A text model's tokenizer comes first: the helper fetches it beside the model and writes
its own line once it is verified, and ``take`` has it parsed (``sidecars``) while the model
still downloads, in time the arbiter would spend waiting.

``take`` hands that to the holder, which calls it under its fork guard: gunicorn's fork
waits for the helper, at most HOLD_SECONDS, and the worker inherits the verified path and
card, so it only builds the session. At the fork the arbiter holds nothing of the helper
(no thread, no pipe, no connection: the helper's sockets were its own): the helper has
exited, or, for a download longer than HOLD_SECONDS, goes on alone with its pipe closed;
the worker then reads the card itself and waits for that download on the cache lock like
any second process. A helper that failed changes nothing: the worker fetches, and reports
a failure as its own. Local files are not fetched ahead: there is no network to wait for.
"""

from __future__ import annotations

import importlib
import json
import os
import selectors
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from functions.config.card import ModelCard
    from functions.config.settings import Settings

HOLD_SECONDS = 5.0
"""The longest gunicorn's fork waits for the helper; a longer download goes on in it while
the worker, forked, answers 503 and waits for the file on the cache lock."""
NETWORK_SCHEMES = ("gs://", "s3://", "http://", "https://")
WORKER_MODULES = ("uvicorn.loops.uvloop", "uvicorn.protocols.http.auto",
                  "uvicorn.protocols.websockets.auto")
"""What gunicorn's uvicorn worker imports as it starts (its "auto" event loop, HTTP and
WebSocket protocols pick the implementations installed as they are imported)."""
_helpers: list[tuple[int, int]] = []  # (pid, read end of its pipe), forked, not yet taken


def arbiter_will_fork(settings: Settings) -> bool:
    """Whether this process is gunicorn's arbiter-to-be: functions-framework's command line
    without --debug serves through gunicorn, which imports main.py, then forks the worker
    that serves. The arbiter's own session would only be thrown away."""
    debug = "--debug" in sys.argv or (settings.debug or "").lower() in ("1", "true", "yes", "on")
    return "functions_framework._cli" in sys.modules and not debug


def fetch_ahead() -> None:
    """In gunicorn's arbiter-to-be, for a model in object storage: fork the helper."""
    if "functions_framework._cli" not in sys.modules or _helpers or not any(
            os.environ.get(name, "").startswith(NETWORK_SCHEMES)
            for name in ("MODEL_URI", "AIP_STORAGE_URI")):
        return  # read before Settings: the usual local model pays no settings parse here
    from functions.config.settings import Settings

    settings = Settings.from_env()
    if not arbiter_will_fork(settings) or not settings.model_uri.startswith(NETWORK_SCHEMES):
        return
    from functions.loading.artifacts import fetch_model
    from functions.loading.pointer import resolve_model_uris
    from functions.loading.stores import Stores

    if _threads() > 1:  # another thread's locks would cross the fork
        return
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the helper: it never returns into the import that forked it
        try:  # the store's SDK is imported here, beside the arbiter's imports
            os.close(read)
            stores = Stores(settings.storage_retry_seconds)
            with open(write, "wb") as out:
                def early(path: Path, card: ModelCard) -> None:  # the tokenizer, verified
                    out.write(json.dumps(_found(settings, path, card)).encode() + b"\n")
                    out.flush()
                out.write(json.dumps(_fetch(lambda: fetch_model(
                    settings, stores, *resolve_model_uris(settings, stores),
                    sidecars_ready=early), settings)).encode())
        finally:
            os._exit(0)  # never a failing status: gunicorn's arbiter may reap this process
    os.close(write)
    _helpers.append((pid, read))


def pending() -> bool:
    """Whether a helper was forked and not taken yet (the load need not import the store's
    SDK: the helper fetches, and a worker whose helper failed imports it itself)."""
    return bool(_helpers)


def _threads() -> int:
    """This process's threads, native ones included where /proc lists them."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def take(settings: Settings, sidecars: Callable[[Path, ModelCard], None] | None = None,
         ) -> tuple[Path, ModelCard] | None:
    """The helper's verified (model path, card), waiting at most HOLD_SECONDS; None when
    no helper ran for ``settings``, it failed, or it is still downloading. Its pipe is
    closed when this returns, and the helper reaped unless still running.

    ``sidecars(model_path, card)`` is called meanwhile, in this thread, once the helper
    says a text model's tokenizer is verified (its model still downloading): the arbiter,
    which has nothing else to do until the fork, parses it then, and the worker inherits it
    parsed instead of parsing it beside its session build (which holds the GIL)."""
    if not _helpers:
        return None
    pid, read = _helpers.pop()
    with open(read, "rb") as pipe, selectors.DefaultSelector() as sel:
        sel.register(pipe, selectors.EVENT_READ)
        deadline, out = time.monotonic() + HOLD_SECONDS, b""
        while sel.select(max(0.0, deadline - time.monotonic())):
            block = os.read(read, 1 << 16)
            if not block:
                break
            out += block
            if b"\n" in out:  # the early line: a text model's tokenizer is in place
                line, _, out = out.partition(b"\n")
                early = _result(line, settings, whole=False)
                if early is not None and sidecars is not None:
                    sidecars(*early)
        else:
            return None  # gunicorn's arbiter reaps it when it ends
    try:
        os.waitpid(pid, 0)  # it closed its output: exiting
    except ChildProcessError:  # gunicorn's arbiter reaped it first
        pass
    return _result(out, settings)


def import_for_worker(card: ModelCard | None) -> None:
    """Import, in the arbiter, what its worker imports first: WORKER_MODULES, and with a
    text model's card its tokenizer library. The holder calls it under its fork guard while
    the fetch ahead runs, and with the card once taken: the forked worker then builds the
    session at once, instead of beside those imports (which take the GIL the build needs).
    Imports only: no loop, no thread."""
    text = card is not None and card.tokenizer is not None
    names = WORKER_MODULES + (("tokenizers",) if text else ())
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:  # another server stack: its worker imports its own
            pass


def _result(out: bytes, settings: Settings, whole: bool = True,
            ) -> tuple[Path, ModelCard] | None:
    """(model path, card) from a line of the helper (``whole``: the model is in place)."""
    from functions.config.card import ModelCard

    try:
        found = json.loads(out)
        path = Path(found["path"])
        if found["model_uri"] != settings.model_uri or \
                path.parent != settings.model_cache_dir or (whole and not path.is_file()):
            return None
        return path, ModelCard.from_json(found["card"])
    except (ValueError, KeyError, TypeError):  # it failed (its "error" says why) or died
        return None


def _found(settings: Settings, path: Path, card: ModelCard) -> dict[str, str]:
    return {"model_uri": settings.model_uri, "path": str(path), "card": card.to_json()}


def _fetch(fetch: Callable[[], tuple[Path, ModelCard]], settings: Settings) -> dict[str, str]:
    try:
        path, card = fetch()
    except Exception as exc:  # noqa: BLE001 - the worker fetches again and reports it
        return {"error": f"{type(exc).__name__}: {exc}"}
    return _found(settings, path, card)


def _forget_in_child() -> None:
    # a worker forked before the holder took the helper: the pipe is the arbiter's
    for _, read in _helpers:
        os.close(read)
    _helpers.clear()


os.register_at_fork(after_in_child=_forget_in_child)
