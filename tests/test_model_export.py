"""model_export with scikit-learn: the real CLI, the GCS emulator, moto's S3, and the function
serving what was published. Torch lives in test_model_export_torch.py."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest

from functions.config.card import ModelCard
from model_export.cli import build_parser
from tests.conftest import DEMO_CARD
from tests.model_export_fixtures import (
    IRIS_FEATURES,
    IRIS_LABELS,
    cli,
    create_s3_bucket,
    fails,
    iris,
    ok,
    served_predictions,
    write_csv,
)

COMMANDS = ["sklearn", "gbdt", "hf", "torch", "verify", "optimize", "quantize", "prune",
            "publish", "demo"]


@pytest.fixture(scope="module")
def pipeline_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An imputer + scaler + MLP pipeline on iris (quantisable: MatMul weights), its rows."""
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    tmp = tmp_path_factory.mktemp("sk")
    X, y = iris()
    pipe = make_pipeline(SimpleImputer(), StandardScaler(),
                         MLPClassifier((16,), max_iter=2000, random_state=0)).fit(X, y)
    joblib.dump(pipe, tmp / "pipe.joblib")
    return {"dir": tmp, "pipe": tmp / "pipe.joblib", "rows": write_csv(tmp / "rows.csv", X, y)}


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for command in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: python -m model_export " + command in capsys.readouterr().out


def test_module_entry_runs_as_a_process_and_exits_with_the_error_code(tmp_path: Path) -> None:
    """The one subprocess of these tests: ``python -m model_export`` itself is the subject
    (``__main__`` turns ``cli.main``'s return value into the process exit status)."""
    import subprocess
    import sys

    from tests.servers import ROOT

    run = [sys.executable, "-m", "model_export"]
    helped = subprocess.run([*run, "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    assert helped.returncode == 0 and "usage: python -m model_export" in helped.stdout
    failed = subprocess.run([*run, "optimize", str(tmp_path / "nowhere.onnx")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert failed.returncode == 2, failed
    assert failed.stderr.strip() == f"error: {tmp_path / 'nowhere.onnx'}: no such file"


def test_demo_rebuilds_the_bundled_model_byte_for_byte(tmp_path: Path) -> None:
    ok(cli("demo", "--out", tmp_path / "iris.onnx"))
    bundled = ModelCard.from_json(DEMO_CARD.read_bytes())
    rebuilt = ModelCard.from_json((tmp_path / "iris.card.json").read_bytes())
    assert rebuilt.sha256 == bundled.sha256
    assert (tmp_path / "iris.onnx").read_bytes() == DEMO_CARD.with_name("iris.onnx").read_bytes()
    same = ("inputs", "outputs", "feature_names", "labels", "label_output",
            "probability_output", "opset", "feature_ranges")
    assert {k: getattr(rebuilt, k) for k in same} == {k: getattr(bundled, k) for k in same}
    assert bundled.feature_names == IRIS_FEATURES and bundled.labels == IRIS_LABELS
    assert bundled.verify and bundled.verify["passed"] and bundled.verify["rows"] == 150


def test_sklearn_round_trip_to_gcs_and_s3_then_served(
        pipeline_files: dict[str, Path], gcs_env: dict[str, str], gcs_bucket, s3_env, app
) -> None:
    tmp, X = pipeline_files["dir"], iris()[0]
    model = tmp / "iris_mlp.onnx"
    out = ok(cli("sklearn", pipeline_files["pipe"], "--out", model, "--feature-names",
                 ",".join(IRIS_FEATURES), "--labels", ",".join(IRIS_LABELS),
                 "--sample-rows", pipeline_files["rows"], "--target", "species"))
    assert "parity PASSED: 150 rows" in out
    card = ModelCard.from_json(model.with_name("iris_mlp.card.json").read_bytes())
    assert [(o.name, o.dtype, o.shape) for o in card.outputs] == [
        ("label", "int64", [None]), ("probabilities", "float32", [None, 3])]
    assert card.inputs[0].shape == [None, 4] and card.opset <= 17  # --opset is the ceiling
    assert (card.feature_names, card.labels, card.allow_nan) == (IRIS_FEATURES, IRIS_LABELS, True)
    assert card.framework["name"] == "scikit-learn" and card.converter["name"] == "skl2onnx"
    assert card.feature_ranges and card.verify["passed"] and card.created_at

    out = ok(cli("verify", model, "--source", pipeline_files["pipe"], "--rows", "3000"))
    assert "parity PASSED: 3000 rows (3000 rows drawn from feature_ranges)" in out
    out = ok(cli("optimize", model, "--repeat", "1"))
    assert "session creation:" in out and "graph optimisation off" in out
    out = ok(cli("quantize", model, "--sample-rows", pipeline_files["rows"], "--target",
                 "species", "--repeat", "1"))
    assert "latency batch 1000:" in out and "budget: met" in out

    out = ok(cli("publish", tmp / "iris_mlp.opt.onnx", "--to", f"gs://{gcs_bucket.name}/models",
                 env=gcs_env))
    uri = f"gs://{gcs_bucket.name}/models/iris_mlp/1/model.onnx"
    assert out.strip().splitlines()[-1] == f"MODEL_URI={uri}"
    fails(cli("publish", tmp / "iris_mlp.opt.onnx", "--to", f"gs://{gcs_bucket.name}/models",
              env=gcs_env), 7, "already holds model.onnx, model.card.json")

    served = app({**gcs_env, "MODEL_URI": uri, "OPTIMIZED_MODEL": "true"})
    pipe = joblib.load(pipeline_files["pipe"])
    labels, probs = served_predictions(served, X)
    assert labels == [IRIS_LABELS[i] for i in pipe.predict(X)]
    np.testing.assert_allclose(probs, pipe.predict_proba(X), atol=1e-4)

    create_s3_bucket(s3_env["AWS_ENDPOINT_URL"], "sk-models")
    out = ok(cli("publish", tmp / "iris_mlp.int8.onnx", "--to", "s3://sk-models",
                 "--version", "2-int8", env=s3_env))
    assert out.strip().endswith("MODEL_URI=s3://sk-models/iris_mlp/2-int8/model.onnx")
    served = app({**s3_env, "MODEL_URI": "s3://sk-models/iris_mlp/2-int8/model.onnx"})
    labels, probs = served_predictions(served, X)
    agree = np.mean([a == IRIS_LABELS[b] for a, b in zip(labels, pipe.predict(X), strict=True)])
    assert agree >= 0.99
    assert np.abs(probs - pipe.predict_proba(X)).max() <= 0.05


def test_not_a_model(tmp_path: Path) -> None:
    junk = tmp_path / "notes.joblib"
    junk.write_text("these are not the weights you are looking for\n")
    fails(cli("sklearn", junk), 3, "is not a scikit-learn model")
    joblib.dump({"weights": [1, 2, 3]}, tmp_path / "dict.joblib")
    fails(cli("sklearn", tmp_path / "dict.joblib"), 3, "holds a dict, not a scikit-learn")


def test_unsupported_estimator_is_named_with_the_converters_message(tmp_path: Path) -> None:
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris()
    joblib.dump(make_pipeline(StandardScaler(), KernelRidge()).fit(X, y), tmp_path / "kr.joblib")
    fails(cli("sklearn", tmp_path / "kr.joblib"), 4, "(KernelRidge) cannot be converted by "
          "skl2onnx", "Unable to find a shape calculator")


def test_export_that_does_not_match_its_source_fails_and_is_not_publishable(
        tmp_path: Path, pipeline_files: dict[str, Path]) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = iris()
    joblib.dump(LogisticRegression(max_iter=500).fit(X, (y + 1) % 3), tmp_path / "other.joblib")
    ok(cli("sklearn", pipeline_files["pipe"], "--out", tmp_path / "m.onnx"))
    err = fails(cli("verify", tmp_path / "m.onnx", "--source", tmp_path / "other.joblib"), 5,
                "m.onnx does not match its source model", "output 'probabilities'")
    assert "labels agree on" in err
    card = json.loads((tmp_path / "m.card.json").read_text())
    assert card["verify"]["passed"] is False
    fails(cli("publish", tmp_path / "m.onnx", "--to", "gs://never-reached"), 5,
          "failed its parity check")


def test_quantize_over_budget_is_refused_and_not_written(
        tmp_path: Path, pipeline_files: dict[str, Path]) -> None:
    ok(cli("sklearn", pipeline_files["pipe"], "--out", tmp_path / "m.onnx"))
    fails(cli("quantize", tmp_path / "m.onnx", "--max-abs-error", "1e-7"), 6,
          "int8 variant of m.onnx refused, not written")
    assert not (tmp_path / "m.int8.onnx").exists()
    ok(cli("demo", "--out", tmp_path / "iris.onnx"))
    fails(cli("quantize", tmp_path / "iris.onnx"), 1, "nothing to quantise in iris.onnx")


def test_missing_card_and_bad_destination(tmp_path: Path) -> None:
    ok(cli("demo", "--out", tmp_path / "iris.onnx"))
    (tmp_path / "copy.onnx").write_bytes((tmp_path / "iris.onnx").read_bytes())
    fails(cli("optimize", tmp_path / "copy.onnx"), 2, "no model card beside copy.onnx")
    fails(cli("publish", tmp_path / "iris.onnx", "--to", "ftp://x/y"), 2, "expected gs://")


def test_integer_classes_become_label_indices_and_regressors_answer_value(
        tmp_path: Path) -> None:
    import onnxruntime as ort
    from sklearn.linear_model import LogisticRegression, Ridge

    X, y = iris()
    odd = LogisticRegression(max_iter=500).fit(X, y * 2 + 1)  # classes 1, 3, 5
    joblib.dump(odd, tmp_path / "odd.joblib")
    ok(cli("sklearn", tmp_path / "odd.joblib"))
    card = ModelCard.from_json((tmp_path / "odd.card.json").read_bytes())
    assert card.labels == ["1", "3", "5"] and card.outputs[0].dtype == "int64"
    label, _ = ort.InferenceSession(tmp_path / "odd.onnx").run(None, {"input": X})
    assert [card.labels[i] for i in label] == [str(c) for c in odd.predict(X)]

    joblib.dump(Ridge().fit(X, X[:, 0] * 3), tmp_path / "ridge.joblib")
    ok(cli("sklearn", tmp_path / "ridge.joblib"))
    card = ModelCard.from_json((tmp_path / "ridge.card.json").read_bytes())
    assert (card.task, card.value_output, card.labels) == ("regression", "value", None)
    assert [o.name for o in card.outputs] == ["value"] and card.verify["passed"]


def test_the_function_never_imports_model_export_and_its_deploy_leaves_it_out() -> None:
    """model_export may import the card from functions, never the reverse: the deployed
    function ships without model_export (deploy/gcloudignore) and must start without it."""
    import ast

    from tests.servers import ROOT

    for path in [ROOT / "main.py", *sorted((ROOT / "functions").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "model_export" for n in names), path
    ignored = (ROOT / "deploy" / "gcloudignore").read_text().split()
    assert "model_export/" in ignored
