"""Sequence packing (``model_export hf --packed``, functions.model.packing): several texts a
row, no padding, served behind the padded signature. A tiny BERT (random weights) exported
both ways: the packed graph, served, gives every text the padded graph's embedding whatever
shares its row, and the calls are cut by tokens alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from functions.config.card import ModelCard
from functions.model.cuts import Budget, cut_by_length
from functions.model.packing import rows_of
from tests.model_export_fixtures import cli, fails, ok, v2_infer
from tests.model_export_fixtures.tiny_bert import build

TEXTS = ["the quick brown fox", "ok", "", "the food was not good, the service was very bad",
         "a great hotel! " * 20, "film", "is the film great? not very", "good food " * 3,
         "the hotel", "what a fine day for it", "bad", "very very very good service"]


def _exports(tmp: Path) -> tuple[Path, Path]:
    model = build(tmp / "enc", "feature-extraction")
    common = ["--task", "feature-extraction", "--pooling", "mean", "--normalize"]
    ok(cli("hf", model, *common, "--no-packed", "--out", tmp / "plain" / "enc.onnx"))
    out = ok(cli("hf", model, *common, "--out", tmp / "packed" / "enc.onnx"))  # the default
    assert "packed graph: several texts a row" in out
    assert "parity PASSED: 18 rows" in out  # through functions.model.packing's adapter
    return tmp / "plain" / "enc.onnx", tmp / "packed" / "enc.onnx"


def _embed(fn, texts: list[str]) -> np.ndarray:  # noqa: ANN001 (InProcess)
    got = fn.post("/predict", json={"instances": texts})
    assert got.status_code == 200, got.text
    return np.array([p["embedding"] for p in got.json()["predictions"]])


def test_packed_graph_serves_the_padded_graphs_embeddings(tmp_path: Path, app) -> None:
    plain, packed = _exports(tmp_path)
    card = ModelCard.from_json(packed.with_suffix(".card.json").read_bytes())
    plain_card = ModelCard.from_json(plain.with_suffix(".card.json").read_bytes())
    assert card.extra["packing"]["segments"] == "segment_ids"
    assert (card.inputs, card.outputs) == (plain_card.inputs, plain_card.outputs)
    a, b = app({"MODEL_URI": str(plain)}), app({"MODEL_URI": str(packed)})
    assert b.get("/model").json()["inputs"] == a.get("/model").json()["inputs"]
    want = _embed(a, TEXTS)
    together = _embed(b, TEXTS)  # cut into several packed calls, many texts a row
    np.testing.assert_allclose(together, want, atol=2e-5)
    # a text's embedding does not depend on what shares its row (block-diagonal attention)
    alone = np.vstack([_embed(b, [t]) for t in TEXTS])
    np.testing.assert_allclose(alone, together, atol=2e-5)
    reversed_ = _embed(b, TEXTS[::-1])[::-1]
    np.testing.assert_allclose(reversed_, together, atol=2e-5)
    # the Open Inference Protocol's token tensors go through the same adapter
    from tokenizers import Tokenizer

    batch = Tokenizer.from_file(str(packed.with_suffix(".tokenizer.json"))).encode_batch(TEXTS)
    feeds = {"input_ids": np.array([e.ids for e in batch]),
             "attention_mask": np.array([e.attention_mask for e in batch]),
             "token_type_ids": np.array([e.type_ids for e in batch])}
    np.testing.assert_allclose(v2_infer(b, "enc", feeds)["embedding"], want, atol=2e-5)
    for shapes in ([[1, 0]] * 3, [[1, 4], [1, 3], [1, 4]]):  # what the padded graph refuses
        body = {"inputs": [{"name": n, "datatype": "INT64", "shape": shape,
                            "data": [1] * int(np.prod(shape))}
                           for n, shape in zip(feeds, shapes, strict=True)]}
        refused = b.post("/v2/models/enc/infer", json=body)
        assert refused.status_code == 400 and "the model refused" in refused.text, refused.text
    # optimize and quantize check their variants through the same adapter
    ok(cli("optimize", packed, "--repeat", "1"))  # exits non-zero on a parity failure
    ok(cli("quantize", packed, "--repeat", "1", "--min-cosine", "0.95"))
    for variant in ("enc.opt", "enc.int8"):
        v = ModelCard.from_json((packed.parent / f"{variant}.card.json").read_bytes())
        assert (v.inputs, v.outputs, v.extra["packing"]) == (
            card.inputs, card.outputs, card.extra["packing"])
    served = app({"MODEL_URI": str(packed.parent / "enc.opt.onnx")})
    np.testing.assert_allclose(_embed(served, TEXTS), want, atol=2e-5)


def test_packing_cuts_hold_tokens_not_padding() -> None:
    rng = np.random.default_rng(5)
    lengths = rng.integers(3, 60, 300)
    budget = Budget(tokens=1 << 20, input_bytes=1, max_rows=64, pack_tokens=128)
    cuts = cut_by_length(lengths, budget)
    assert sorted(np.concatenate(cuts).tolist()) == list(range(len(lengths)))
    calls = -(-int(lengths.sum()) // 128)
    assert len(cuts) == calls
    for cut in cuts:  # near-equal shares: within one text of the mean
        assert abs(int(lengths[cut].sum()) - lengths.sum() / calls) <= lengths.max()
    assert len(cut_by_length(np.array([40, 30, 20]), budget)) == 1  # fits: one call
    few_rows = Budget(tokens=1 << 20, input_bytes=1, max_rows=10, pack_tokens=1 << 20)
    assert max(len(c) for c in cut_by_length(lengths, few_rows)) <= 10


def test_rows_are_balanced() -> None:
    rng = np.random.default_rng(9)
    for n in (1, 7, 40):
        lengths = rng.integers(1, 90, n)
        rows = rows_of(lengths, 128)
        assert sorted(i for r in rows for i in r) == list(range(n))
        fill = [int(lengths[r].sum()) for r in rows]
        assert len(rows) <= max(1, -(-int(lengths.sum()) // 128))
        assert max(fill) <= lengths.sum() / len(rows) + lengths.max()


def test_packed_is_refused_where_it_does_not_apply(tmp_path: Path) -> None:
    model = build(tmp_path / "cls", "text-classification")
    fails(cli("hf", model, "--task", "text-classification", "--packed"), 2,
          "--packed is for embedding models")
