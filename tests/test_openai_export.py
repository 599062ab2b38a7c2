"""``model_export hf --shortened-embeddings`` writes the fact into the card, and the served
model then honours OpenAI's ``dimensions``: the first values of each embedding, normalised
again because the graph normalises (the card's ``embedding.normalized``); without the flag
the card says nothing and ``dimensions`` is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from functions.config.card import ModelCard
from tests.model_export_fixtures import cli, ok
from tests.model_export_fixtures.tiny_bert import build

TEXTS = ["The quick brown fox.", "A great hotel!", "ok"]


def test_shortened_embeddings_from_export_to_dimensions(tmp_path: Path, app) -> None:
    src = build(tmp_path / "enc", "feature-extraction")
    ok(cli("hf", src, "--task", "feature-extraction", "--normalize", "--shortened-embeddings",
           "--out", tmp_path / "short.onnx"))
    ok(cli("hf", src, "--task", "feature-extraction", "--normalize", "--out",
           tmp_path / "plain.onnx"))
    short = ModelCard.from_json((tmp_path / "short.card.json").read_bytes())
    plain = ModelCard.from_json((tmp_path / "plain.card.json").read_bytes())
    assert short.shortened_embeddings and not plain.shortened_embeddings

    fn = app({"MODEL_URI": str(tmp_path / "short.onnx")})
    full = np.array([d["embedding"] for d in fn.post("/v1/embeddings", json={
        "model": "short", "input": TEXTS}).json()["data"]])
    assert full.shape == (3, 32) and np.allclose(np.linalg.norm(full, axis=1), 1, atol=1e-5)
    cut = fn.post("/v1/embeddings", json={"model": "short", "input": TEXTS, "dimensions": 12})
    got = np.array([d["embedding"] for d in cut.json()["data"]])
    want = full[:, :12] / np.linalg.norm(full[:, :12], axis=1, keepdims=True)
    assert got.shape == (3, 12) and np.abs(got - want).max() < 1e-6

    refused = app({"MODEL_URI": str(tmp_path / "plain.onnx")}).post("/v1/embeddings", json={
        "model": "plain", "input": TEXTS, "dimensions": 12})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "dimensions_not_supported"
