"""Model pointer objects: ``.../models/NAME/LATEST`` names the latest good model version.

A roll-out (functions/events/rollout.py) rewrites the pointer only after the new version
downloaded, verified, loaded, passed the compatibility check and warmed up; so a process
that cold-starts with ``MODEL_URI`` set to a pointer always finds a version that served.

Pointer content is JSON: ``{"model_uri", "card_uri", "name", "version", "sha256"}``; a
pointer holding a single URI line (written by hand) is accepted too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from functions.config.card import ModelCard, sidecar_card
from functions.config.settings import Settings
from functions.errors import ModelLoadError
from functions.loading.object_store import FetchError
from functions.loading.stores import Stores

POINTER_NAME = "LATEST"


def is_pointer(uri: str) -> bool:
    """Whether ``uri`` names a pointer object rather than a model."""
    return uri.rstrip("/").rsplit("/", 1)[-1] == POINTER_NAME


def parse_pointer(raw: bytes, where: str) -> tuple[str, str]:
    """(model URI, card URI) from pointer content; ValueError naming ``where`` if unusable."""
    text = raw.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        body: Any = orjson.loads(text)
        model_uri = body.get("model_uri") if isinstance(body, dict) else None
        if not isinstance(model_uri, str) or not model_uri:
            raise ValueError(f"pointer {where} has no model_uri")
        return model_uri, str(body.get("card_uri") or sidecar_card(model_uri))
    if not text or "\n" in text:
        raise ValueError(f"pointer {where} must hold JSON or a single URI")
    return text, sidecar_card(text)


def resolve_model_uris(settings: Settings, stores: Stores) -> tuple[str, str]:
    """(model URI, card URI) to load: MODEL_URI itself, what the pointer it names says, or
    the one model in the folder it names."""
    if settings.model_uri.endswith("/"):
        model_uri = _the_model_in(settings.model_uri, stores)
        return model_uri, settings.model_card_uri or sidecar_card(model_uri)
    if not is_pointer(settings.model_uri):
        return settings.model_uri, settings.card_uri()
    try:
        uri = settings.model_uri
        return parse_pointer(stores.for_uri(uri).get(uri), uri)
    except FetchError as exc:
        raise ModelLoadError(f"model pointer: {exc}") from exc
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from exc


def _the_model_in(folder: str, stores: Stores) -> str:
    """The URI of the one ``.onnx`` object directly in ``folder`` (Vertex AI's
    AIP_STORAGE_URI); ModelLoadError naming what was found when there is not exactly one."""
    where = folder.rstrip("/").split("://", 1)[-1].strip("/")  # bucket/key or a path
    try:
        found = sorted("/" + ref.name if ref.scheme == "file" else ref.uri
                       for ref in stores.for_uri(folder).list_objects(folder)
                       if ref.name.endswith(".onnx") and
                       f"{ref.bucket}/{ref.name}".strip("/").rsplit("/", 1)[0] == where)
    except FetchError as exc:
        raise ModelLoadError(f"model folder {folder}: {exc}") from exc
    if len(found) != 1:
        raise ModelLoadError(f"model folder {folder} holds {len(found)} .onnx files "
                             f"({', '.join(found) or 'none'}); it must hold one, or set "
                             "MODEL_URI to the model to serve")
    return found[0]


def pointer_body(model_uri: str, card_uri: str, card: ModelCard) -> bytes:
    """Pointer content for a version that just rolled out."""
    return orjson.dumps({
        "model_uri": model_uri, "card_uri": card_uri, "name": card.name,
        "version": card.version, "sha256": card.sha256,
        "updated_at": dt.datetime.now(dt.UTC).isoformat(),
    }, option=orjson.OPT_INDENT_2)
