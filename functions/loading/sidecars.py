"""Files that travel beside a model and load with it: today, a text model's tokenizer.

A sidecar sits in the model's folder (``.../VERSION/tokenizer.json`` beside
``.../VERSION/model.onnx``), is named by the card, and is verified against the card's
sha256 like the model. It is cached next to the model's cache file, named after it, so a
new model version never reads an old version's tokenizer. No lock is held: the file is
small, written atomically, and a second process that races only fetches it twice.
"""

from __future__ import annotations

from pathlib import Path

from functions.config.card import ModelCard
from functions.config.settings import Settings
from functions.errors import ModelLoadError
from functions.loading.object_store import FetchError, sha256_file
from functions.loading.stores import Stores


def tokenizer_path(model_path: Path) -> Path:
    """Where the tokenizer of a cached model lives."""
    return model_path.with_suffix(".tokenizer.json")


def beside(model_uri: str, name: str) -> str:
    """The URI of file ``name`` in the same folder as the model."""
    head, sep, _ = model_uri.rpartition("/")
    return f"{head}{sep}{name}" if sep else name


def fetch_tokenizer(settings: Settings, stores: Stores, model_uri: str, card: ModelCard,
                    model_path: Path) -> Path | None:
    """The verified local tokenizer of a text model (None when the card declares none)."""
    spec = card.tokenizer
    if spec is None:
        return None
    if not spec.sha256 and settings.require_sha256:
        raise ModelLoadError(f"the card's tokenizer {spec.file} has no sha256 "
                             "(REQUIRE_SHA256=true)")
    dest = tokenizer_path(model_path)
    if dest.exists() and (not spec.sha256 or sha256_file(dest) == spec.sha256):
        return dest
    uri = beside(model_uri, spec.file)
    try:
        actual = stores.for_uri(uri).fetch(uri, dest)
    except FetchError as exc:
        raise ModelLoadError(f"tokenizer: {exc}") from exc
    if spec.sha256 and actual != spec.sha256:
        dest.unlink(missing_ok=True)
        raise ModelLoadError(f"sha256 mismatch for {uri}: card says {spec.sha256}, "
                             f"download is {actual}; refusing to serve it")
    return dest
