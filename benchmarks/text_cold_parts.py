"""One text model's cold start taken apart, serially, in a fresh process (run by
benchmarks/text_cold_start.py; prints one JSON object of seconds per part).

    python -m benchmarks.text_cold_parts gs://bucket/minilm/1/minilm.onnx

Each part is what the function does at cold start, one after another with nothing
overlapped, so their sum is what a fully serial start would cost:

- ``interpreter``: process spawn to this module's first line (``SPAWNED_AT`` from the parent);
- ``imports``: what the server's arbiter imports (functions-framework, its servers, main's
  modules, the GCS SDK the store brings, onnxruntime) and the ``tokenizers`` import;
- ``card``, ``download``, ``sha256``: the card, the model file, its digest (GcsStore, as
  served, STORAGE_EMULATOR_HOST honoured);
- ``tokenizer_fetch``: the tokenizer sidecar fetched and verified;
- ``session``: OnnxModel (the session build, graph checks included);
- ``tokenizer``: the TextEncoder (tokenizer.json parsed, padding set up);
- ``warmup``: the holder's warm-up call.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

FIRST_LINE = time.time()


def main(model_uri: str) -> dict[str, float]:
    parts = {"interpreter": FIRST_LINE - float(os.environ.get("SPAWNED_AT", FIRST_LINE))}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        parts[name] = now - t
        t = now

    import functions_framework._cli  # noqa: F401 - the server stack the arbiter imports
    import gunicorn.app.base  # noqa: F401
    import numpy as np
    import tokenizers  # noqa: F401
    import uvicorn.workers  # noqa: F401

    from functions.codecs.tokens import TextEncoder
    from functions.config.settings import Settings
    from functions.loading.artifacts import read_card
    from functions.loading.object_store import sha256_file
    from functions.loading.sidecars import fetch_tokenizer, tokenizer_path
    from functions.loading.stores import Stores
    from functions.model.onnx_model import OnnxModel
    from functions.runtime import build  # noqa: F401 - every serving module main imports

    stores = Stores(30.0)
    store = stores.for_uri(model_uri)  # the SDK's import, as the holder makes it up front
    lap("imports")
    settings = Settings.from_env()
    card = read_card(settings.card_uri(), stores)
    lap("card")
    folder = Path(tempfile.mkdtemp(prefix="cold-parts-"))
    try:
        path = folder / f"{card.sha256}.onnx"
        with open(path, "wb") as sink:  # the bytes alone: fetch would hash them as they come
            store._download_to(model_uri, sink)
        lap("download")
        assert sha256_file(path) == card.sha256
        lap("sha256")
        fetch_tokenizer(settings, stores, model_uri, card, path)
        lap("tokenizer_fetch")
        model = OnnxModel(path, card, settings)
        lap("session")
        assert card.tokenizer is not None
        TextEncoder(tokenizer_path(path), card.tokenizer,
                    {spec.name: np.dtype(spec.dtype) for spec in model.inputs})
        lap("tokenizer")
        model.warmup()
        lap("warmup")
        return parts
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # 90 MB a run


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
