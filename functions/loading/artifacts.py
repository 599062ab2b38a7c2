"""A model version's artifacts: its card, and the model file fetched, verified and cached.

``read_card`` reads and validates the card; ``fetch_model`` gives the local path of the
model, downloaded once into ``MODEL_CACHE_DIR`` under its sha256 and checked against the
card, its sidecar files (a text model's tokenizer) fetched in a thread beside the download.
Both raise ModelLoadError naming the URI. The lifecycle (when to load, readiness) is
the holder's, not this module's; the cache lock (never inherited across fork) is
``cache_lock``'s.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from functions.config.card import ModelCard
from functions.config.settings import Settings
from functions.errors import ModelLoadError
from functions.loading.cache_lock import cache_lock
from functions.loading.object_store import FetchError, sha256_file
from functions.loading.sidecars import fetch_tokenizer
from functions.loading.stores import Stores
from functions.telemetry import spans

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 600.0
"""How long a process waits for another one's download of the same file before it starts
its own (a stuck holder must not keep a worker from ever loading)."""


def read_card(card_uri: str, stores: Stores) -> ModelCard:
    """The model card at ``card_uri``, validated (ModelLoadError naming the URI if not)."""
    try:
        return ModelCard.from_json(stores.for_uri(card_uri).get(card_uri))
    except FetchError as exc:
        raise ModelLoadError(f"model card: {exc}") from exc
    except ValueError as exc:
        raise ModelLoadError(f"model card {card_uri} is not a valid card: {exc}") from exc


def fetch_model(settings: Settings, stores: Stores, model_uri: str, card_uri: str,
                card: ModelCard | None = None,
                sidecars_ready: Callable[[Path, ModelCard], None] | None = None,
                ) -> tuple[Path, ModelCard]:
    """Card and verified local model file for ``model_uri`` (cached by sha256), with its
    sidecar files (a text model's tokenizer); ``card`` when the caller has already read it.
    ``sidecars_ready(model_path, card)`` is called once a text model's sidecars are verified,
    while the model may still be downloading (the early fetch hands the tokenizer over).

    One download per cache file across the instance's processes: a worker forked during
    the arbiter's download waits for it (at most LOCK_WAIT_SECONDS), then finds the file
    in place and verifies it again. The file is verified before the lock is released, so a
    waiter never finds a corrupt download under the model's sha256. The sidecars' thread
    has ended when this returns or raises (a fork never meets it).
    """
    card = card or read_card(card_uri, stores)
    path = _cache_path(settings, card_uri, card)
    settings.model_cache_dir.mkdir(parents=True, exist_ok=True)
    failed: list[Exception] = []

    def sidecars() -> None:  # a small file beside the large one: its requests meanwhile
        try:
            with spans.span("tokenizer.fetch"):
                fetch_tokenizer(settings, stores, model_uri, card, path)
            if sidecars_ready is not None:
                sidecars_ready(path, card)
        except Exception as exc:  # noqa: BLE001 - raised below, in the caller's thread
            failed.append(exc)

    beside = threading.Thread(target=spans.in_context(sidecars), name="model-sidecars",
                              daemon=True) if card.tokenizer is not None else None
    if beside is not None:
        beside.start()
    try:
        _model_file(stores, model_uri, path, card)
    finally:
        if beside is not None:
            beside.join()
    if failed:
        raise failed[0]
    return path, card


def _cache_path(settings: Settings, card_uri: str, card: ModelCard) -> Path:
    """Where the model of ``card`` is cached (named by its sha256)."""
    if not card.sha256 and settings.require_sha256:
        raise ModelLoadError(f"model card {card_uri} has no sha256 (REQUIRE_SHA256=true)")
    name = f"{card.sha256}.onnx" if card.sha256 else f"{card.name}-{card.version}.onnx"
    return settings.model_cache_dir / name


def _model_file(stores: Stores, model_uri: str, path: Path, card: ModelCard) -> None:
    with cache_lock(path.with_suffix(".lock"), LOCK_WAIT_SECONDS) as locked:
        if not locked:
            log.warning("another process held the lock on %s for %gs; downloading here too",
                        path.name, LOCK_WAIT_SECONDS)
        if card.sha256 and path.exists():
            with spans.span("model.sha256", cached=True):
                if sha256_file(path) == card.sha256:
                    return
        try:
            with spans.span("model.download", uri=model_uri):  # hashed as it arrives
                actual = stores.for_uri(model_uri).fetch(model_uri, path)
        except FetchError as exc:
            raise ModelLoadError(str(exc)) from exc
        if card.sha256 and actual != card.sha256:
            path.unlink(missing_ok=True)
            raise ModelLoadError(f"sha256 mismatch for {model_uri}: card says {card.sha256}, "
                                 f"download is {actual}; refusing to serve it")
