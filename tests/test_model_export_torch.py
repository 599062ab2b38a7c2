"""model_export with PyTorch: a small MLP exported, verified, optimised, quantised, pruned,
published to the GCS emulator and moto's S3, and served by the function from there.
torch is a test requirement (requirements-export.txt): without it these fail, not skip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from functions.config.card import ModelCard
from tests import model_export_fixtures as fixtures
from tests.model_export_fixtures import IRIS_FEATURES, IRIS_LABELS, cli, fails, iris, ok
from tests.model_export_fixtures.nets import MLP, Branchy, train_iris_mlp

MODULE = "tests.model_export_fixtures.nets:MLP"
NAMING = ("--feature-names", ",".join(IRIS_FEATURES), "--labels", ",".join(IRIS_LABELS))


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A trained iris MLP: state dict, TorchScript and ExportedProgram files, held-out rows."""
    tmp = tmp_path_factory.mktemp("torch")
    X, y = iris()
    model = train_iris_mlp(torch.from_numpy(X), torch.from_numpy(y))
    torch.save(model.state_dict(), tmp / "mlp.pt")
    torch.jit.save(torch.jit.script(model), tmp / "mlp.ts")
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (torch.from_numpy(X[:8]),),
                                  dynamic_shapes=({0: batch},))
    torch.export.save(program, tmp / "mlp.pt2")
    return {"dir": tmp, "state": tmp / "mlp.pt", "ts": tmp / "mlp.ts", "pt2": tmp / "mlp.pt2",
            "rows": fixtures.write_csv(tmp / "rows.csv", X, y)}


def torch_predict(state: Path, X: np.ndarray) -> tuple[list[str], np.ndarray]:
    model = MLP()
    model.load_state_dict(torch.load(state, weights_only=True))
    with torch.no_grad():
        probs = torch.softmax(model.eval()(torch.from_numpy(X)), dim=1).numpy()
    return [IRIS_LABELS[i] for i in probs.argmax(axis=1)], probs


def test_torch_round_trip_to_gcs_and_s3_then_served(
        mlp: dict[str, Path], gcs_env: dict[str, str], gcs_bucket, s3_env, app) -> None:
    tmp, X = mlp["dir"], iris()[0]
    model = tmp / "iris_torch.onnx"
    out = ok(cli("torch", mlp["state"], "--module", MODULE, "--out", model, "--opset", "17",
                 *NAMING, "--sample-rows", mlp["rows"], "--target", "species"))
    assert "parity PASSED: 150 rows" in out
    card = ModelCard.from_json(model.with_name("iris_torch.card.json").read_bytes())
    assert [(o.name, o.dtype, o.shape) for o in card.outputs] == [
        ("label", "int64", [None]), ("probabilities", "float32", [None, 3])]
    assert (card.inputs[0].name, card.inputs[0].shape, card.opset) == ("input", [None, 4], 17)
    assert (card.label_output, card.probability_output, card.labels) == (
        "label", "probabilities", IRIS_LABELS)
    assert card.framework["name"] == "torch" and card.converter["source_kind"] == "state_dict"

    ok(cli("verify", model, "--source", mlp["state"], "--module", MODULE, "--rows", "3000"))
    assert "session creation:" in ok(cli("optimize", model, "--repeat", "1"))
    out = ok(cli("quantize", model, "--sample-rows", mlp["rows"], "--target", "species",
                 "--max-abs-error", "0.1", "--min-label-agreement", "0.98", "--repeat", "1"))
    assert "size:" in out and "budget: met" in out
    int8 = ModelCard.from_json((tmp / "iris_torch.int8.card.json").read_bytes())
    assert int8.variants[-1]["kind"] == "quantize"
    assert int8.variants[-1]["size_bytes_after"] < int8.variants[-1]["size_bytes_before"]

    want_labels, want_probs = torch_predict(mlp["state"], X)
    uri = f"gs://{gcs_bucket.name}/iris_torch/1/model.onnx"
    assert ok(cli("publish", tmp / "iris_torch.opt.onnx", "--to", f"gs://{gcs_bucket.name}",
                  env=gcs_env)).strip().endswith(f"MODEL_URI={uri}")
    labels, probs = fixtures.served_predictions(app({**gcs_env, "MODEL_URI": uri,
                                              "OPTIMIZED_MODEL": "true"}), X)
    assert labels == want_labels
    np.testing.assert_allclose(probs, want_probs, atol=1e-4)

    fixtures.create_s3_bucket(s3_env["AWS_ENDPOINT_URL"], "torch-models")
    ok(cli("publish", tmp / "iris_torch.int8.onnx", "--to", "s3://torch-models/prod",
           "--version", "1-int8", env=s3_env))
    labels, probs = fixtures.served_predictions(
        app({**s3_env, "MODEL_URI": "s3://torch-models/prod/iris_torch/1-int8/model.onnx"}), X)
    assert np.mean(np.array(labels) == np.array(want_labels)) >= 0.98  # the budget given
    assert np.abs(probs - want_probs).max() <= 0.1


def test_prune_reports_sparsity_accuracy_and_the_dense_kernel_caveat(
        mlp: dict[str, Path]) -> None:
    out = ok(cli("prune", mlp["state"], "--module", MODULE, "--amount", "0.2", *NAMING,
                 "--sample-rows", mlp["rows"], "--target", "species", "--max-accuracy-drop", "0.02",
                 "--out", mlp["dir"] / "pruned.onnx"))
    assert "pruned 20% of weights: sparsity 19.95%" in out and "{'accuracy':" in out
    assert "dense kernels do not get faster" in out and "parity PASSED" in out
    card = ModelCard.from_json((mlp["dir"] / "pruned.card.json").read_bytes())
    assert card.variants[0]["kind"] == "prune" and abs(card.variants[0]["sparsity"] - 0.2) < 0.01
    fails(cli("prune", mlp["state"], "--module", MODULE, "--amount", "0.97", *NAMING,
              "--sample-rows", mlp["rows"], "--target", "species",
              "--out", mlp["dir"] / "too_pruned.onnx"), 6, "pruned model refused")
    assert not (mlp["dir"] / "too_pruned.onnx").exists()


@pytest.mark.parametrize("form", ["ts", "pt2"])
def test_torchscript_and_exported_program_files(mlp: dict[str, Path], form: str) -> None:
    out_path = mlp["dir"] / f"from_{form}.onnx"
    ok(cli("torch", mlp[form], "--out", out_path, *NAMING, "--sample-rows", mlp["rows"],
           "--target", "species", "--opset", "18"))
    card = ModelCard.from_json(out_path.with_name(f"from_{form}.card.json").read_bytes())
    kind = {"ts": "torchscript", "pt2": "exported_program"}[form]
    assert card.converter["source_kind"] == kind and card.opset == 18
    assert card.verify["passed"] and card.inputs[0].shape == [None, 4]


def test_export_that_does_not_match_its_source(mlp: dict[str, Path], tmp_path: Path) -> None:
    torch.save(Branchy().state_dict(), tmp_path / "branchy.pt")
    fails(cli("torch", tmp_path / "branchy.pt", "--module",
              "tests.model_export_fixtures.nets:Branchy", "--sample-rows", mlp["rows"],
              "--target", "species"),
          5, "branchy.onnx does not match its source model", "labels agree on")


def test_not_a_torch_model(tmp_path: Path, mlp: dict[str, Path]) -> None:
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage" * 100)
    fails(cli("torch", tmp_path / "junk.pt"), 3, "junk.pt is not a PyTorch model")
    fails(cli("torch", mlp["state"]), 2, "is a state dict: pass --module")
    fails(cli("torch", mlp["state"], "--module", "tests.model_export_fixtures.nets:Nope"), 2,
          "cannot be imported")
