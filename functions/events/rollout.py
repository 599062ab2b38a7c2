"""Model roll-out on upload: download, verify, load, check, warm up, then swap atomically.

A version is two objects under MODELS_PREFIX: ``NAME.onnx`` and its card ``NAME.card.json``
(which carries the sha256). Whichever lands second starts the roll-out; the first answers
``waiting``. A version that fails any step is *refused*: logged with its reason, the event
acknowledged (retrying a bad model cannot help), the old model keeps serving. Requests in
flight keep the model object they already hold (``ModelHolder.swap``), so they finish on
the old version. Only after the new version warmed up is the pointer
``MODELS_PREFIX/NAME/LATEST`` rewritten, so cold starts (MODEL_URI=.../LATEST) only ever
find versions that served.
"""

from __future__ import annotations

import threading

from functions import metrics
from functions.config.card import CARD_SUFFIX, sidecar_card
from functions.config.settings import Settings
from functions.errors import ModelLoadError
from functions.events.compat import incompatibilities
from functions.events.failures import is_transient
from functions.events.outcome import Outcome
from functions.loading.artifacts import fetch_model, read_card
from functions.loading.holder import ModelHolder
from functions.loading.object_store import ObjectRef
from functions.loading.pointer import POINTER_NAME, is_pointer, pointer_body
from functions.loading.stores import Stores
from functions.model.onnx_model import OnnxModel

_one_at_a_time = threading.Lock()  # two uploads racing: the second waits, then compares


def model_pair(ref: ObjectRef) -> tuple[str, str] | None:
    """(model URI, card URI) of the version ``ref`` belongs to; None if not a model file."""
    if ref.name.endswith(".onnx"):
        return ref.uri, sidecar_card(ref.uri)
    if ref.name.endswith(CARD_SUFFIX):
        return ref.uri[: -len(CARD_SUFFIX)] + ".onnx", ref.uri
    return None


class Rollout:
    """Loads new versions beside the served model and swaps them in when fit to serve."""

    def __init__(self, settings: Settings, holder: ModelHolder, stores: Stores) -> None:
        self.settings = settings
        self.holder = holder
        self.stores = stores

    def on_model_object(self, ref: ObjectRef) -> Outcome:
        """Handle one object landing under MODELS_PREFIX."""
        pair = model_pair(ref)
        if pair is None:  # pointers we wrote ourselves land here too
            return Outcome("ignored", "not a model file (.onnx / .card.json)")
        other = pair[1] if ref.uri == pair[0] else pair[0]
        if not self.stores.for_uri(other).exists(other):
            return Outcome("waiting", f"{other} is not there yet; its upload starts the roll-out")
        with _one_at_a_time:
            return self.roll_out(*pair, f"{ref.scheme}://{ref.bucket}/{self.settings.models_prefix}")

    def prepare(self, model_uri: str, card_uri: str) -> OnnxModel | Outcome:
        """The version at ``model_uri`` loaded, checked and warmed beside the served model.

        Returns an Outcome instead when there is nothing to do (``unchanged``) or the version
        is unfit (``refused``); raises when the download failed transiently.
        """
        settings, served = self.settings, self.holder.model
        try:
            card = read_card(card_uri, self.stores)
            if served is not None and served.card.sha256 == card.sha256 \
                    and served.card.version == card.version:  # before downloading or hashing
                return Outcome("unchanged", f"{card.name}:{card.version} is already serving")
            path, card = fetch_model(settings, self.stores, model_uri, card_uri, card)
        except ModelLoadError as exc:
            if is_transient(exc):
                raise  # the download failed, not the model: let the platform redeliver
            return _refused(exc.message)
        try:
            model = OnnxModel(path, card, settings)
            problems = incompatibilities(served, model)
            if problems:
                return _refused("incompatible with the served model: " + "; ".join(problems))
            model.warmup()  # always: the first request after the swap must not pay for it
        except ModelLoadError as exc:
            return _refused(exc.message)
        except Exception as exc:  # onnxruntime raises its own types on a graph it cannot run
            return _refused(f"warm-up failed: {type(exc).__name__}: {exc}")
        return model

    def swap_in(self, model: OnnxModel, **data: str) -> Outcome:
        """Serve ``model`` from now on (requests in flight finish on the old one)."""
        old = self.holder.swap(model)
        metrics.inc("model_rollouts_total", 1, "model versions swapped in")
        was = f"{old.card.name}:{old.card.version}" if old is not None else "nothing"
        card = model.card
        return Outcome("rolled_out", f"{card.name}:{card.version} replaced {was}",
                       {"version": card.version, **data})

    def roll_out(self, model_uri: str, card_uri: str, models_root: str) -> Outcome:
        """Load ``model_uri`` beside the served model and swap it in if it is fit to serve.

        The pointer written is MODEL_URI when that is a pointer, else
        ``models_root/NAME/LATEST``.
        """
        model = self.prepare(model_uri, card_uri)
        if isinstance(model, Outcome):
            return model
        settings, card = self.settings, model.card
        pointer_uri = (settings.model_uri if is_pointer(settings.model_uri)
                       else f"{models_root}{card.name}/{POINTER_NAME}")
        self.stores.for_uri(pointer_uri).put(pointer_uri, pointer_body(model_uri, card_uri, card))
        return self.swap_in(model, pointer=pointer_uri)


def _refused(reason: str) -> Outcome:
    metrics.inc("model_rollouts_refused_total", 1, "model uploads refused (old model kept)")
    return Outcome("refused", reason)
