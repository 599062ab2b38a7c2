"""A model optimised offline by model_export is loaded with graph optimisation off, by its card."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.servers import ROOT

ROW = {"instances": [[6.7, 3.0, 5.2, 2.3]]}


def test_card_of_an_optimised_model_turns_load_time_optimisation_off(serve,
                                                                     tmp_path: Path) -> None:
    for args in (["demo", "--out", str(tmp_path / "iris.onnx")],
                 ["optimize", str(tmp_path / "iris.onnx"), "--repeat", "2"]):
        out = subprocess.run([sys.executable, "-m", "model_export", *args], cwd=ROOT,
                             capture_output=True, text=True, timeout=300, check=False)
        assert out.returncode == 0, out.stderr
    plain = serve({"MODEL_URI": str(tmp_path / "iris.onnx")})
    optimised = serve({"MODEL_URI": str(tmp_path / "iris.opt.onnx")})
    assert plain.get("/model").json()["graph_optimization"] == "at load"
    assert optimised.get("/model").json()["graph_optimization"] == "done offline (skipped at load)"
    assert optimised.post("/predict", json=ROW).json()["predictions"] == \
        plain.post("/predict", json=ROW).json()["predictions"]
