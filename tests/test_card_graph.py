"""The card is checked against the graph at load (issue 11): real graphs, real onnxruntime;
a card that does not describe its graph is refused with the reason, and readiness stays 503.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.config.card import ModelCard
from functions.config.settings import Settings
from functions.errors import ModelLoadError
from functions.model.onnx_model import OnnxModel
from tests.conftest import DEMO_CARD, DEMO_MODEL


def _load(path: Path, **card_changes: object) -> OnnxModel:
    card = json.loads(DEMO_CARD.read_text()) | card_changes
    return OnnxModel(path, ModelCard.from_json(json.dumps(card)), Settings())


def _refusal(path: Path, **card_changes: object) -> str:
    with pytest.raises(ModelLoadError) as err:
        _load(path, **card_changes)
    assert err.value.message.startswith(f"the card does not match the graph of {path.name}")
    return err.value.message


def test_the_demo_card_describes_its_graph() -> None:
    assert _load(DEMO_MODEL).output_names == ["label", "probabilities"]


@pytest.mark.parametrize(("change", "reason"), [
    ({"inputs": [{"name": "input", "dtype": "float64", "shape": [None, 4]}]},
     "input input: the card says dtype float64, the graph has float32"),
    ({"inputs": [{"name": "input", "dtype": "float32", "shape": [None, 5]}]},
     "input input: the card says dimension 1 is 5, the graph has 4"),
    ({"inputs": [{"name": "input", "dtype": "float32", "shape": [None]}]},
     "input input: the card says rank 1, the graph has 2"),
    ({"inputs": [{"name": "features", "dtype": "float32", "shape": [None, 4]}]},
     "input names: the card says ['features'], the graph has ['input']"),
    ({"outputs": [{"name": "label", "dtype": "str", "shape": [None]}]},
     "output label: the card says dtype str, the graph has int64"),
    ({"outputs": [{"name": "scores", "dtype": "float32", "shape": [None, 3]}]},
     "card lists output 'scores'"),
    ({"probability_output": "proba"}, "card names probability_output 'proba'"),
    ({"probability_output": "label"},
     "probability_output 'label' is int64 [None]; expected [rows, classes] floats"),
    ({"labels": ["a", "b"]}, "one column per label (2 labels, 3 columns)"),
    ({"feature_names": ["a", "b", "c"]}, "card has 3 feature names, input 'input' takes 4"),
    ({"task": "embedding", "embedding_output": "label"},
     "embedding_output 'label' is int64 [None]; expected [rows, dim] floats"),
])
def test_a_card_that_does_not_describe_the_graph_is_refused(change: dict, reason: str) -> None:
    assert reason in _refusal(DEMO_MODEL, **change)


def test_several_problems_are_reported_together() -> None:
    message = _refusal(DEMO_MODEL, label_output="lab", probability_output="proba")
    assert "label_output 'lab'" in message and "probability_output 'proba'" in message


def test_a_zipmap_output_is_a_probability_output(tmp_path: Path) -> None:
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(X.astype(np.float32), y)
    path = tmp_path / "zipmap.onnx"
    path.write_bytes(to_onnx(clf, X[:1].astype(np.float32)).SerializeToString())  # ZipMap on
    model = _load(path, inputs=[], outputs=[], label_output="output_label",
                  probability_output="output_probability")
    assert model.outputs[1].dtype.startswith("seq(map(")
    assert "value_output 'output_probability' is seq(map(int64,tensor(float)))" in _refusal(
        path, inputs=[], outputs=[], label_output=None, probability_output=None,
        task="regression", value_output="output_probability")


def _embedder(path: Path, rank: int) -> Path:
    shape = [None, 8, 4][:rank]
    out = helper.make_tensor_value_info("emb", TensorProto.FLOAT, shape)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["g"]),
         helper.make_node("Identity" if rank == 3 else "ReduceMean", ["g"], ["emb"],
                          **({} if rank == 3 else {"axes": [1], "keepdims": 0}))],
        "emb", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [None, 8])], [out],
        [numpy_helper.from_array(np.ones((10, 4), np.float32), "table")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                ir_version=8), path)
    return path


def test_embedding_outputs_and_the_tokenizer_inputs(tmp_path: Path) -> None:
    card = {"task": "embedding", "embedding_output": "emb", "inputs": [], "outputs": [],
            "feature_names": [], "labels": None, "label_output": None,
            "probability_output": None}
    pooled = _embedder(tmp_path / "tokens.onnx", 3)
    assert _load(pooled, **card, tokenizer={"pooling": "mean"}).card.embedding_output == "emb"
    assert "expected [rows, dim] floats" in _refusal(pooled, **card)
    vectors = _embedder(tmp_path / "vectors.onnx", 2)
    assert _load(vectors, **card).card.embedding_output == "emb"
    assert "the tokenizer feeds input_ids to 'ids'" in _refusal(
        vectors, **card, tokenizer={"input_names": {"input_ids": "ids"}})


def test_readiness_stays_503_with_the_reason(app, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    model = tmp_path / "m" / "iris.onnx"
    model.write_bytes(DEMO_MODEL.read_bytes())
    card = json.loads(DEMO_CARD.read_text()) | {"probability_output": "proba"}
    (tmp_path / "m" / "iris.card.json").write_text(json.dumps(card))
    fn = app({"MODEL_URI": str(model)}, wait="/healthz")
    resp = fn.post("/predict", json={"instances": [[6.7, 3.0, 5.2, 2.3]]})
    assert resp.status_code == 503, resp.text
    assert "card names probability_output 'proba'" in resp.json()["error"]["message"]
    ready = fn.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["reason"].startswith("model load failed: the card does not match")
