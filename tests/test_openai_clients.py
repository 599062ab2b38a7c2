"""The openai SDK and LangChain's OpenAIEmbeddings (their own venv, ``make clients``) against
the production server (functions-framework) serving all-MiniLM-L6-v2 from its PyPI package:
both encoding formats, a single string, the models list, LangChain's embed_documents and
embed_query (text, check_embedding_ctx_length=False), and lists of token ids, which get the
clear 400, never wrong vectors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from tests.client_venvs import client_bin
from tests.servers import ROOT

TEXTS = ["A man is eating food.", "A man is riding a horse.", "A man is eating food.",
         "Serverless inference cold-starts in under a second."]


def test_openai_sdk_and_langchain_get_predicts_embeddings(minilm_model: Path, serve) -> None:
    fn = serve({"MODEL_URI": str(minilm_model)}, timeout=120)
    done = subprocess.run([str(client_bin("openai")),
                           str(ROOT / "tests" / "client_scripts" / "openai_embeddings.py"),
                           fn.url, "minilm", json.dumps(TEXTS)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.splitlines()[-1])
    want = np.array([p["embedding"] for p in
                     fn.post("/predict", json={"instances": TEXTS}).json()["predictions"]])
    assert want.shape == (4, 384)
    for key in ("float", "default", "langchain_documents"):
        assert np.abs(np.array(found[key]) - want).max() < 1e-6, key
    for key in ("single", "langchain_query"):
        assert np.abs(np.array(found[key]) - want[0]).max() < 1e-6, key
    tok = Tokenizer.from_file(str(minilm_model.parent / "minilm.tokenizer.json"))
    tokens = sum(sum(e.attention_mask) for e in tok.encode_batch(TEXTS))  # its file pads
    assert found["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    assert found["model"] == "minilm" and found["models"] == ["minilm"]
    for key in ("tiktoken_ids", "one_id_list"):
        error = found[key]
        assert error["status"] == 400 and error["code"] == "token_ids_not_accepted", error
        assert error["param"] == "input" and "send the strings" in error["message"]
    assert found["unknown_model"]["status"] == 404
    assert found["unknown_model"]["code"] == "model_not_found"
