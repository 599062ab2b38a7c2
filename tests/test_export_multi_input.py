"""A two-input torch model (int64 token ids + float features) through model_export: every
subcommand feeds both inputs, drawn from the declared dtypes and ranges or read from an
.npz; published to moto's S3 and served over the Open Inference Protocol, same answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from functions.config.card import ModelCard
from tests.model_export_fixtures import cli, create_s3_bucket, fails, ok, v2_infer
from tests.model_export_fixtures.nets import TwoInput

MODULE = "tests.model_export_fixtures.nets:TwoInput"
INPUTS = ("--input", "ids:int64:6:0..49", "--input", "x:float32:4")


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("two")
    torch.manual_seed(0)
    model = TwoInput().eval()
    torch.save(model.state_dict(), tmp / "two.pt")
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 50, size=(64, 6))
    x = rng.standard_normal((64, 4)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(ids), torch.from_numpy(x)).argmax(dim=1).numpy()
    np.savez(tmp / "held.npz", ids=ids, x=x, y=y)
    return {"dir": tmp, "model": model, "ids": ids, "x": x}


def test_two_inputs_every_subcommand_then_served(two: dict, s3_env: dict[str, str],
                                                 app) -> None:
    tmp = two["dir"]
    out = ok(cli("torch", tmp / "two.pt", "--module", MODULE, *INPUTS, "--labels", "a,b,c"))
    assert "parity PASSED: 256 rows (256 rows drawn from declared input ranges)" in out
    card = ModelCard.from_json((tmp / "two.card.json").read_bytes())
    assert [(i.name, i.dtype, i.shape) for i in card.inputs] == [
        ("ids", "int64", [None, 6]), ("x", "float32", [None, 4])]
    assert card.extra["input_ranges"] == {"ids": [0.0, 49.0]}
    assert card.converter["input_order"] == "ids,x" and card.feature_names == []

    ok(cli("verify", tmp / "two.onnx", "--source", tmp / "two.pt", "--module", MODULE))
    ok(cli("verify", tmp / "two.onnx", "--source", tmp / "two.pt", "--module", MODULE,
           "--sample-rows", tmp / "held.npz"))
    assert "session creation:" in ok(cli("optimize", tmp / "two.onnx", "--repeat", "1"))
    out = ok(cli("quantize", tmp / "two.onnx", "--sample-rows", tmp / "held.npz",
                 "--max-abs-error", "0.2", "--min-label-agreement", "0.9", "--repeat", "1"))
    assert "latency batch 1000:" in out and "budget: met" in out
    out = ok(cli("prune", tmp / "two.pt", "--module", MODULE, *INPUTS, "--amount", "0.1",
                 "--labels", "a,b,c", "--sample-rows", tmp / "held.npz",
                 "--out", tmp / "pruned.onnx", "--min-label-agreement", "0.8",
                 "--max-accuracy-drop", "0.2"))
    assert "pruned 10% of weights" in out and "parity PASSED" in out

    create_s3_bucket(s3_env["AWS_ENDPOINT_URL"], "two-inputs")
    ok(cli("publish", tmp / "two.opt.onnx", "--to", "s3://two-inputs", "--quiet", env=s3_env))
    served = app({**s3_env, "MODEL_URI": "s3://two-inputs/two/1/model.onnx",
                    "OPTIMIZED_MODEL": "true"})
    got = v2_infer(served, "two", {"ids": two["ids"], "x": two["x"]})
    with torch.no_grad():
        logits = two["model"](torch.from_numpy(two["ids"]), torch.from_numpy(two["x"]))
    np.testing.assert_allclose(got["probabilities"], torch.softmax(logits, 1).numpy(), atol=1e-5)
    assert got["label"].tolist() == logits.argmax(dim=1).tolist()


def test_two_input_errors_are_messages(two: dict, tmp_path: Path) -> None:
    tmp = two["dir"]
    fails(cli("torch", tmp / "two.pt", "--module", MODULE, "--input-shape", "6"), 4,
          "torch.onnx could not export TwoInput", "forward() missing 1 required positional")
    fails(cli("torch", tmp / "two.pt", "--module", MODULE, "--input", "ids:int64"), 2,
          "expected name:dtype:shape")
    fails(cli("torch", tmp / "two.pt", "--module", MODULE, "--input", "ids:text:6"), 2,
          "dtype 'text' is not one of")
    fails(cli("torch", tmp / "two.pt", "--module", MODULE, "--input", "ids:int64:6:9..1"), 2,
          "range must be LOW..HIGH")
    np.savez(tmp_path / "ids_only.npz", ids=two["ids"])
    ok(cli("torch", tmp / "two.pt", "--module", MODULE, *INPUTS, "--out", tmp_path / "t.onnx"))
    fails(cli("verify", tmp_path / "t.onnx", "--source", tmp / "two.pt", "--module", MODULE,
              "--sample-rows", tmp_path / "ids_only.npz"), 2, "no rows for input(s) x")
    fails(cli("quantize", tmp_path / "t.onnx", "--sample-rows", tmp_path / "ids_only.npz"), 2,
          "no rows for input(s) x")


def test_one_value_per_row_input_exported_and_served_as_a_plain_field(tmp_path: Path,
                                                                      app) -> None:
    """``--input user_id:int64::0..9``: an empty shape is one value per row ([N]), as
    docs/model_kinds.md's "Several inputs" example exports and calls it."""
    from tests.model_export_fixtures.nets import Ranker

    torch.manual_seed(0)
    model = Ranker().eval()
    torch.save(model.state_dict(), tmp_path / "ranker.pt")
    ok(cli("torch", tmp_path / "ranker.pt", "--module", "tests.model_export_fixtures.nets:Ranker",
           "--task", "regression", "--input", "features:float32:4",
           "--input", "user_id:int64::0..9", "--out", tmp_path / "ranker.onnx"))
    card = ModelCard.from_json((tmp_path / "ranker.card.json").read_bytes())
    assert [(s.name, s.shape) for s in card.inputs] == [("features", [None, 4]),
                                                        ("user_id", [None])]
    fn = app({"MODEL_URI": str(tmp_path / "ranker.onnx")})
    resp = fn.post("/predict", json={"instances": [{"features": [0.5, 1.0, -1.0, 2.0],
                                                    "user_id": 3}]})
    assert resp.status_code == 200, resp.text
    with torch.no_grad():
        want = model(torch.tensor([[0.5, 1.0, -1.0, 2.0]]), torch.tensor([3])).item()
    assert resp.json()["predictions"][0]["value"] == pytest.approx(want, abs=1e-5)
    fails(cli("torch", tmp_path / "ranker.pt", "--module",
              "tests.model_export_fixtures.nets:Ranker", "--input", "user_id:int64:0"), 2,
          "per-row dimensions are numbers >= 1")
