"""What a text model's cold start overlaps (issue 24 item 4): the sha256 is computed as the
download arrives (no second pass: the store's fetch returns it), and the tokenizer is
parsed beside the session build, the thread that parses it ended before the load goes on.
Real holder, real stores (the GCS emulator), real onnxruntime session, real tokenizer."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.codecs import tokens
from functions.codecs.tokens import TextEncoder, read_ahead
from functions.config.settings import Settings
from functions.loading import ModelHolder, Stores
from functions.loading.sidecars import tokenizer_path
from functions.model.onnx_model import OnnxModel
from tests.pubsub_topics import wait_until


@pytest.fixture
def bert_in_gcs(built_model, gcs_bucket) -> str:
    """The tiny BERT, its card and tokenizer in the emulator's bucket; the model's URI."""
    path, _ = built_model("bert")
    for file in (path, path.with_suffix(".card.json"), path.parent / "tokenizer.json"):
        gcs_bucket.blob(f"bert/1/{file.name}").upload_from_filename(str(file))
    return f"gs://{gcs_bucket.name}/bert/1/{path.name}"


def test_the_tokenizer_is_parsed_beside_the_session_build(bert_in_gcs: str,
                                                          tmp_path: Path) -> None:
    during: dict[str, Any] = {}
    building, parsed = threading.Event(), threading.Event()

    def build(path: Path, card: Any, settings: Settings) -> OnnxModel:
        building.set()
        model = OnnxModel(path, card, settings)
        # the read-ahead runs while we build: it finishes although the build still waits
        during["parsed_while_building"] = parsed.wait(30)
        return model

    def beside(path: Path, card: Any) -> None:
        during["building_when_called"] = building.wait(30)
        during["thread"] = threading.current_thread().name
        read_ahead(path, card)
        parsed.set()

    settings = Settings(model_uri=bert_in_gcs, model_cache_dir=tmp_path / "cache")
    holder = ModelHolder(settings, Stores(retry_seconds=5), build)
    holder.while_building(beside)
    holder.while_building(lambda path, card: 1 / 0)  # a failing head start fails nothing
    holder.start()
    model = wait_until(lambda: holder.model, "the model loaded", 60)
    assert during == {"building_when_called": True, "parsed_while_building": True,
                      "thread": "model-load-beside"}
    assert "model-load-beside" not in {t.name for t in threading.enumerate()}
    read = tokens._READ_AHEAD[tokenizer_path(model.path)]
    spec = model.card.tokenizer
    encoder = TextEncoder(tokenizer_path(model.path), spec,
                          {s.name: np.dtype(s.dtype) for s in model.inputs})
    assert encoder.tokenizer is read  # taken, not parsed again
    assert tokenizer_path(model.path) not in tokens._READ_AHEAD
    feeds, _ = encoder.encode(["a first sentence"])
    assert model.run(feeds)  # the tokenizer read ahead feeds the session it was built beside


def test_the_download_is_hashed_as_it_arrives(bert_in_gcs: str, tmp_path: Path) -> None:
    stores = Stores(retry_seconds=5)
    dest = tmp_path / "model.onnx"
    digest = stores.for_uri(bert_in_gcs).fetch(bert_in_gcs, dest)
    assert digest == hashlib.sha256(dest.read_bytes()).hexdigest()
    settings = Settings(model_uri=bert_in_gcs, model_cache_dir=tmp_path / "cache")
    holder = ModelHolder(settings, stores)
    holder.start()
    model = wait_until(lambda: holder.model, "the model loaded", 60)
    assert model.path.name == f"{digest}.onnx"  # cached under the digest the card names
