"""Real models of every kind the function serves, built in the test (seconds, no downloads).

Each builder writes ``NAME.onnx`` and its card ``NAME.card.json`` (sha256 included) into a
folder and returns the model path, so a test can serve it with ``MODEL_URI``. Besides the
ONNX file each returns the source model's own prediction function, so a test can compare
what the function answers with what the framework computes. What a builder returns pickles
(tests/built_models.py hands it from the xdist worker that built it to the others).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Predict = Callable[..., np.ndarray]


def write_model(folder: Path, name: str, onnx_bytes: bytes, version: str = "1",
                **card: Any) -> Path:
    """``folder/name.onnx`` + its card; returns the model path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.onnx"
    path.write_bytes(onnx_bytes)
    body = {"name": name, "version": version,
            "sha256": hashlib.sha256(onnx_bytes).hexdigest(), **card}
    (folder / f"{name}.card.json").write_text(json.dumps(body))
    return path


def _torch_onnx(module: Any, args: tuple, names: list[str], outputs: list[str],
                axes: dict[str, dict[int, str]]) -> bytes:
    import torch

    buffer = io.BytesIO()
    module.eval()
    with torch.no_grad():
        torch.onnx.export(module, args, buffer, dynamo=False, input_names=names,
                          output_names=outputs, dynamic_axes=axes, opset_version=17)
    return buffer.getvalue()


def _torch_predict(net: Any, *arrays: np.ndarray) -> np.ndarray:
    """``net`` on numpy arrays, as the builders' predict (a partial of it pickles)."""
    import torch

    with torch.no_grad():
        return net(*(torch.from_numpy(a) for a in arrays)).numpy()


def two_input_model(folder: Path, version: str = "1", seed: int = 0) -> tuple[Path, Predict]:
    """float features [N, 4] + an int64 id [N] through an Embedding(10, 3) -> value [N, 1]."""
    import torch

    from tests.model_export_fixtures.nets import FeaturesAndId

    torch.manual_seed(seed)
    net = FeaturesAndId()
    raw = _torch_onnx(net, (torch.zeros(2, 4), torch.zeros(2, dtype=torch.long)),
                      ["features", "user_id"], ["value"],
                      {"features": {0: "batch"}, "user_id": {0: "batch"}, "value": {0: "batch"}})
    path = write_model(folder, "two_input", raw, version, task="regression",
                       value_output="value")
    return path, functools.partial(_torch_predict, net)


def image_model(folder: Path) -> tuple[Path, Predict]:
    """A small CNN over [N, 3, 32, 32] images -> 3 class probabilities."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.Softmax(dim=1))
    raw = _torch_onnx(net, (torch.zeros(1, 3, 32, 32),), ["image"], ["probabilities"],
                      {"image": {0: "batch"}, "probabilities": {0: "batch"}})
    path = write_model(folder, "cnn", raw, task="classification",
                       probability_output="probabilities", labels=["cat", "dog", "bird"])
    return path, functools.partial(_torch_predict, net)


TEXTS = ["the service is great", "awful slow service", "great food, great service",
         "slow and awful", "what a great place", "never again, awful"]


def string_model(folder: Path) -> tuple[Path, Predict]:
    """scikit-learn CountVectorizer + LogisticRegression over a string tensor [N, 1]."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(CountVectorizer(), LogisticRegression())
    pipe.fit(TEXTS, [1, 0, 1, 0, 1, 0])
    # slim containers have only the C locale: the converter's default (en_US) fails to load
    options = {CountVectorizer: {"locale": "C"}, LogisticRegression: {"zipmap": False}}
    proto = to_onnx(pipe, initial_types=[("text", StringTensorType([None, 1]))],
                    options=options, target_opset={"": 17, "ai.onnx.ml": 3})
    path = write_model(folder, "sentiment", proto.SerializeToString(), task="classification",
                       label_output="label", probability_output="probabilities",
                       labels=["negative", "positive"])
    return path, functools.partial(_predict_proba, pipe)


def gbdt_zipmap_model(folder: Path) -> tuple[Path, Predict, list[str]]:
    """LightGBM on breast cancer, converted by onnxmltools with its default ZipMap output."""
    import lightgbm
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    clf = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=8, verbose=-1)
    clf.fit(data.data.astype(np.float32), data.target)
    n = data.data.shape[1]
    proto = convert_lightgbm(clf, initial_types=[("input", FloatTensorType([None, n]))],
                             target_opset=15)
    names = [f"f{i}" for i in range(n)]
    path = write_model(folder, "cancer_lgbm", proto.SerializeToString(), task="classification",
                       label_output="label", probability_output="probabilities",
                       feature_names=names)
    return path, functools.partial(_predict_proba, clf), names


def _predict_proba(model: Any, rows: Any) -> np.ndarray:
    """A scikit-learn-style model's probabilities (a partial of it pickles)."""
    return model.predict_proba(rows)


def bert_onnx(bert: Any) -> bytes:
    """A ``transformers`` BERT exported with its three token inputs (dynamic batch and
    token axes) -> ``last_hidden_state``; pooling is left to the card."""
    import torch

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN201
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    dummy = tuple(torch.ones(2, 5, dtype=torch.long) for _ in names)
    return _torch_onnx(Hidden(), dummy, names, ["last_hidden_state"], axes)


def tiny_bert(folder: Path, max_length: int = 16) -> tuple[Path, Any]:
    """A 2-layer BERT from a config (random weights) + a WordPiece tokenizer.json beside it,
    exported with token inputs and last_hidden_state; the card asks for mean pooling and
    L2 normalisation. Returns (model path, the torch model)."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel

    words = sorted({w for t in TEXTS for w in t.replace(",", " ,").split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ",", *words]
    tok = BertWordPieceTokenizer({w: i for i, w in enumerate(vocab)}, lowercase=True)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    bert = BertModel(config)

    raw = bert_onnx(bert)
    tokenizer_sha = hashlib.sha256((folder / "tokenizer.json").read_bytes()).hexdigest()
    path = write_model(folder, "model", raw, task="embedding",
                       embedding_output="last_hidden_state",
                       tokenizer={"file": "tokenizer.json", "sha256": tokenizer_sha,
                                  "max_length": max_length, "pooling": "mean",
                                  "normalize": True})
    return path, bert


def reference_embeddings(bert: Any, tokenizer_file: Path, texts: list[str],
                         max_length: int) -> np.ndarray:
    """Mean pooling over real tokens + L2 normalisation, computed with torch."""
    import torch
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_file))
    tok.enable_truncation(max_length)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(texts)
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc])
    types = torch.tensor([e.type_ids for e in enc])
    with torch.no_grad():
        hidden = bert(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    m = mask.unsqueeze(-1).float()
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=1).numpy()
