"""The OpenAI embeddings routes in process (tests/inprocess.py) on the tiny BERT of
tests/model_kinds.py: answers equal /predict's, OpenAI's shapes and statuses for every
error, the settings (aliases, token ids), ``dimensions`` by the card, and the routes in
the OpenAPI document only for embedding models."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from tests.built_models import BuiltModels

TEXTS = ["the service is great", "slow", "what a fine day for it", "slow"]


@pytest.fixture
def bert(built_model: BuiltModels) -> Path:
    return built_model("bert")[0]


def _vectors(answer: dict) -> np.ndarray:
    rows = [d["embedding"] for d in sorted(answer["data"], key=lambda d: d["index"])]
    if rows and isinstance(rows[0], str):
        return np.stack([np.frombuffer(base64.b64decode(r), dtype="<f4") for r in rows])
    return np.array(rows)


def _tokens(bert: Path, texts: list[str]) -> int:
    tok = Tokenizer.from_file(str(bert.parent / "tokenizer.json"))
    return sum(sum(e.attention_mask) for e in tok.encode_batch(texts))


def test_embeddings_equal_predict_in_both_encodings(app, bert: Path) -> None:
    fn = app({"MODEL_URI": str(bert)})
    want = np.array([p["embedding"] for p in
                     fn.post("/predict", json={"instances": TEXTS}).json()["predictions"]])
    for path in ("/v1/embeddings", "/embeddings"):
        for fmt in ("float", "base64", None):
            body = {"model": "model", "input": TEXTS, "user": "u-1", "unknown_key": 1}
            if fmt:
                body["encoding_format"] = fmt
            resp = fn.post(path, json=body)
            assert resp.status_code == 200, resp.text
            answer = resp.json()
            assert answer["object"] == "list" and answer["model"] == "model"
            assert [d["index"] for d in answer["data"]] == [0, 1, 2, 3]
            assert {d["object"] for d in answer["data"]} == {"embedding"}
            assert isinstance(answer["data"][0]["embedding"], str) == (fmt == "base64")
            assert np.abs(_vectors(answer) - want).max() < 1e-6
            # the tokenizer's real counts ([CLS] and [SEP] included), duplicates too
            assert answer["usage"] == {"prompt_tokens": _tokens(bert, TEXTS),
                                       "total_tokens": _tokens(bert, TEXTS)}
    one = fn.post("/v1/embeddings", json={"model": "model", "input": "slow"}).json()
    assert np.abs(_vectors(one)[0] - want[1]).max() < 1e-6


ERRORS = [
    ({"model": "gpt-4", "input": "x"}, 404, "model", "model_not_found"),
    ({"input": "x"}, 400, "model", "missing_required_parameter"),
    ({"model": 3, "input": "x"}, 400, "model", "invalid_type"),
    ({"model": "model"}, 400, "input", "missing_required_parameter"),
    ({"model": "model", "input": []}, 400, "input", "empty_input"),
    ({"model": "model", "input": ""}, 400, "input", "empty_input"),
    ({"model": "model", "input": ["a", ""]}, 400, "input", "empty_input"),
    ({"model": "model", "input": ["slow"] * 1001}, 400, "input", "too_many_inputs"),
    ({"model": "model", "input": {"text": "x"}}, 400, "input", "invalid_type"),
    ({"model": "model", "input": ["a", None]}, 400, "input", "invalid_type"),
    ({"model": "model", "input": ["a", ["b"]]}, 400, "input", "invalid_type"),
    ({"model": "model", "input": [101, 2023, 102]}, 400, "input", "token_ids_not_accepted"),
    ({"model": "model", "input": [[101, 2023], [7]]}, 400, "input", "token_ids_not_accepted"),
    ({"model": "model", "input": ["slow", "great " * 20]}, 400, "input",
     "context_length_exceeded"),
    ({"model": "model", "input": "x", "encoding_format": "int8"}, 400, "encoding_format",
     "invalid_value"),
    ({"model": "model", "input": "x", "dimensions": 8}, 400, "dimensions",
     "dimensions_not_supported"),
    ({"model": "model", "input": "x", "dimensions": 0}, 400, "dimensions", "invalid_value"),
    ({"model": "model", "input": "x", "dimensions": 33}, 400, "dimensions", "invalid_value"),
    ({"model": "model", "input": "x", "dimensions": True}, 400, "dimensions", "invalid_value"),
    ({"model": "model", "input": "x", "dimensions": -1.7e308}, 400, "dimensions",
     "invalid_value"),  # an integral float beyond 64 bits (the fuzz found a 500)
    ({"model": "model", "input": "x", "user": 5}, 400, "user", "invalid_type"),
    ([{"model": "model", "input": "x"}], 400, None, "invalid_request"),
]


def test_errors_have_openais_shape_and_status(app, bert: Path) -> None:
    fn = app({"MODEL_URI": str(bert)})
    for body, status, param, code in ERRORS:
        resp = fn.post("/v1/embeddings", json=body)
        assert resp.status_code == status, (body, resp.text)
        error = resp.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, error
        assert (error["param"], error["code"], error["type"]) == \
            (param, code, "invalid_request_error"), (body, error)
    long = fn.post("/v1/embeddings", json={"model": "model", "input": ["ok", "great " * 20]})
    assert "input[1]" in long.json()["error"]["message"] and "16 tokens" in long.text
    full = fn.post("/v1/embeddings", json={"model": "model", "input": "x", "dimensions": 32})
    assert full.status_code == 200 and len(full.json()["data"][0]["embedding"]) == 32


def test_transport_errors_in_openais_shape(app, bert: Path) -> None:
    fn = app({"MODEL_URI": str(bert), "MAX_BODY_BYTES": "200"})
    cases = [
        (fn.post("/v1/embeddings", json={"model": "model", "input": ["slow"] * 100}), 413,
         "payload_too_large"),
        (fn.post("/v1/embeddings", content=b"{", headers={"content-type": "application/json"}),
         400, "malformed_json"),
        (fn.post("/v1/embeddings", content=b"x", headers={"content-type": "text/plain"}), 415,
         "unsupported_media_type"),
        (fn.get("/v1/embeddings"), 405, "method_not_allowed"),
        (fn.post("/v1/models"), 405, "method_not_allowed"),
    ]
    for resp, status, code in cases:
        assert resp.status_code == status, resp.text
        assert resp.json()["error"]["code"] == code, resp.text
        assert resp.json()["error"]["type"] == "invalid_request_error"
    assert cases[3][0].headers["allow"] == "POST"


def test_aliases_and_models_list(app, bert: Path) -> None:
    fn = app({"MODEL_URI": str(bert),
              "OPENAI_MODEL_ALIASES": json.dumps(["text-embedding-3-small", "e5"])})
    for path in ("/v1/models", "/models"):
        listed = fn.get(path).json()
        assert listed["object"] == "list"
        assert [m["id"] for m in listed["data"]] == ["model", "text-embedding-3-small", "e5"]
        assert {m["object"] for m in listed["data"]} == {"model"}
    resp = fn.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "slow"})
    assert resp.status_code == 200 and resp.json()["model"] == "text-embedding-3-small"


def test_token_ids_when_the_setting_takes_them(app, bert: Path) -> None:
    fn = app({"MODEL_URI": str(bert), "OPENAI_TOKEN_IDS": "true"})
    tok = Tokenizer.from_file(str(bert.parent / "tokenizer.json"))
    ids = [e.ids for e in tok.encode_batch(TEXTS)]
    text = _vectors(fn.post("/v1/embeddings", json={"model": "model", "input": TEXTS}).json())
    answer = fn.post("/v1/embeddings", json={"model": "model", "input": ids}).json()
    assert np.abs(_vectors(answer) - text).max() < 1e-6
    assert answer["usage"]["prompt_tokens"] == sum(map(len, ids))
    one = fn.post("/v1/embeddings", json={"model": "model", "input": ids[2]}).json()
    assert np.abs(_vectors(one)[0] - text[2]).max() < 1e-6
    vocab = max(tok.get_vocab().values()) + 1  # the tiny vocabulary skips an id
    for bad, why in (([[2, vocab, 3]], "vocabulary"), ([[2] * 17], "limit of 16"),
                     ([[2, -1]], "vocabulary"), ([[2, 3], []], "input[1] must be a non-empty list"),
                     ([[2, 3], [2, "x"]], "input[1] must be a non-empty list")):
        resp = fn.post("/v1/embeddings", json={"model": "model", "input": bad})
        assert resp.status_code == 400 and why in resp.json()["error"]["message"], resp.text


def test_dimensions_when_the_card_says_shortened(app, bert: Path, tmp_path: Path) -> None:
    folder = tmp_path / "short"
    shutil.copytree(bert.parent, folder)
    card_path = folder / "model.card.json"
    card_path.write_text(json.dumps({**json.loads(card_path.read_text()),
                                     "shortened_embeddings": True}))
    fn = app({"MODEL_URI": str(folder / "model.onnx")})
    full = _vectors(fn.post("/v1/embeddings", json={"model": "model", "input": TEXTS}).json())
    for fmt in ("float", "base64"):
        short = _vectors(fn.post("/v1/embeddings", json={
            "model": "model", "input": TEXTS, "dimensions": 8, "encoding_format": fmt}).json())
        want = full[:, :8] / np.linalg.norm(full[:, :8], axis=1, keepdims=True)
        assert short.shape == (4, 8) and np.abs(short - want).max() < 1e-6
    doc = fn.get("/openapi.json").json()
    dims = doc["components"]["schemas"]["EmbeddingRequest"]["properties"]["dimensions"]
    assert {"type": "integer", "minimum": 1, "maximum": 32} in dims["anyOf"]


def test_routes_only_for_embedding_models(app, bert: Path, demo_app) -> None:
    paths = app({"MODEL_URI": str(bert)}).get("/openapi.json").json()["paths"]
    assert {"/v1/embeddings", "/embeddings", "/v1/models", "/models"} <= set(paths)
    other = demo_app.get("/openapi.json").json()["paths"]  # documented as the 404 they are
    assert set(other["/v1/embeddings"]["post"]["responses"]) == {"404", "413", "415", "503"}
    assert set(other["/v1/models"]["get"]["responses"]) == {"404", "503"}
    for resp in (demo_app.post("/v1/embeddings", json={"model": "iris", "input": "x"}),
                 demo_app.get("/v1/models")):
        assert resp.status_code == 404, resp.text
        assert resp.json()["error"]["code"] == "not_found"
        assert "embedding model" in resp.json()["error"]["message"]
