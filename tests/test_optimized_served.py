"""A model optimised offline by model_export is loaded with graph optimisation off, by its card."""

from __future__ import annotations

from pathlib import Path

from tests.model_export_fixtures import cli, ok

ROW = {"instances": [[6.7, 3.0, 5.2, 2.3]]}


def test_card_of_an_optimised_model_turns_load_time_optimisation_off(app,
                                                                     tmp_path: Path) -> None:
    ok(cli("demo", "--out", tmp_path / "iris.onnx"))
    ok(cli("optimize", tmp_path / "iris.onnx", "--repeat", "1"))
    plain = app({"MODEL_URI": str(tmp_path / "iris.onnx")})
    optimised = app({"MODEL_URI": str(tmp_path / "iris.opt.onnx")})
    assert plain.get("/model").json()["graph_optimization"] == "at load"
    assert optimised.get("/model").json()["graph_optimization"] == "done offline (skipped at load)"
    assert optimised.post("/predict", json=ROW).json()["predictions"] == \
        plain.post("/predict", json=ROW).json()["predictions"]
