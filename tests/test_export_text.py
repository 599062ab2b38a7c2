"""A TF-IDF + LogisticRegression text pipeline through model_export: string input, no
n_features_in_ needed, loads where only the C.UTF-8 locale exists; published to moto's S3
and served over the Open Inference Protocol with the pipeline's answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import onnx
import pytest

from functions.config.card import ModelCard
from tests.model_export_fixtures import cli, create_s3_bucket, fails, ok, v2_infer

GOOD = ["great", "wonderful", "superb", "lovely", "excellent", "delightful"]
BAD = ["awful", "terrible", "dreadful", "boring", "horrible", "disappointing"]
THINGS = ["film", "meal", "hotel", "book", "service", "concert"]
C_ONLY = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def corpus() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for i, thing in enumerate(THINGS):
        for j in range(6):
            texts.append(f"The {thing} was {GOOD[(i + j) % 6]}, Truly {GOOD[j]}!")
            labels.append("pos")
            texts.append(f"the {thing} was {BAD[(i + j) % 6]} and {BAD[j]}")
            labels.append("neg")
    return texts, labels


@pytest.fixture(scope="module")
def text_model(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    tmp = tmp_path_factory.mktemp("text")
    texts, labels = corpus()
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=500)).fit(texts, labels)
    joblib.dump(pipe, tmp / "reviews.joblib")
    held = ["An excellent hotel, lovely staff", "TERRIBLE meal. Boring too.", "the book was",
            "Été superb", "", "awful awful wonderful"]
    (tmp / "held.txt").write_text("\n".join(h for h in held if h) + "\n")
    return {"dir": tmp, "pipe": pipe, "held": held}


def test_text_pipeline_exported_loads_under_c_utf8_published_and_served(
        text_model: dict, s3_env: dict[str, str], app) -> None:
    tmp, pipe = text_model["dir"], text_model["pipe"]
    out = ok(cli("sklearn", tmp / "reviews.joblib", "--sample-rows", tmp / "held.txt",
                 env=C_ONLY))
    assert "parity PASSED: 5 rows (file held.txt)" in out
    card = ModelCard.from_json((tmp / "reviews.card.json").read_bytes())
    assert [(i.name, i.dtype, i.shape) for i in card.inputs] == [("input", "str", [None, 1])]
    assert (card.feature_names, card.labels, card.converter["locale"]) == (
        ["text"], ["neg", "pos"], "C.UTF-8")
    locales = {a.s.decode() for n in onnx.load(tmp / "reviews.onnx").graph.node
               if n.op_type == "StringNormalizer" for a in n.attribute if a.name == "locale"}
    assert locales == {"C.UTF-8"}
    # a process of its own: the locale a slim container has is the subject
    load = subprocess.run([sys.executable, "-c", "import onnxruntime as ort, sys; "
                           "ort.InferenceSession(sys.argv[1])", str(tmp / "reviews.onnx")],
                          env={"PATH": "/usr/bin:/bin", **C_ONLY}, capture_output=True,
                          text=True, timeout=120)
    assert load.returncode == 0, load.stderr

    out = ok(cli("verify", tmp / "reviews.onnx", "--source", tmp / "reviews.joblib",
                 "--rows", "40"))  # drawn: the built-in sample sentences
    assert "parity PASSED: 40 rows (40 sample sentences (built in))" in out
    ok(cli("optimize", tmp / "reviews.onnx", "--repeat", "1"))

    create_s3_bucket(s3_env["AWS_ENDPOINT_URL"], "text-models")
    ok(cli("publish", tmp / "reviews.opt.onnx", "--to", "s3://text-models", "--quiet",
           env=s3_env))
    served = app({**s3_env, "MODEL_URI": "s3://text-models/reviews/1/model.onnx",
                    "OPTIMIZED_MODEL": "true"})
    held = np.array(text_model["held"], dtype=object).reshape(-1, 1)
    got = v2_infer(served, "reviews", {"input": held})
    assert got["label"].tolist() == pipe.predict(held[:, 0]).tolist()
    np.testing.assert_allclose(got["probabilities"], pipe.predict_proba(held[:, 0]), atol=1e-5)


def test_text_rows_for_a_numeric_model_are_refused(text_model: dict, tmp_path: Path) -> None:
    ok(cli("demo", "--out", tmp_path / "iris.onnx"))
    fails(cli("verify", tmp_path / "iris.onnx", "--source", text_model["dir"] / "reviews.joblib",
              "--sample-rows", text_model["dir"] / "held.txt"), 2,
          "texts given, but the model takes input (float32)")
