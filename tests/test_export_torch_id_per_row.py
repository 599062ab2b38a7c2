"""Issue 26's two-input PyTorch model: ``forward(x, cat_id)`` with x [N, 8] float32 and
cat_id [N] int64 whose ``nn.Embedding`` is concatenated to x (a [N, 1] id would break the
concatenation). Declared ``--input cat_id:int64::0..9`` (one value per row, drawn from
0..9), it exports, passes parity and serves through /predict and /v2 alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.model_export_fixtures import cli, ok

NET = '''
import torch


class CatNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)
        self.out = torch.nn.Linear(12, 1)

    def forward(self, x, cat_id):
        return self.out(torch.cat([x, self.emb(cat_id)], dim=1))
'''


def test_an_id_per_row_concatenated_embedding_exports_and_serves(tmp_path: Path, app) -> None:
    source = tmp_path / "catnet.py"
    source.write_text(NET)
    namespace: dict = {}
    exec(compile(NET, str(source), "exec"), namespace)  # the same class, to compare with
    torch.manual_seed(0)
    net = namespace["CatNet"]().eval()
    torch.save(net.state_dict(), tmp_path / "catnet.pt")
    out = ok(cli("torch", tmp_path / "catnet.pt", "--module", f"{source}:CatNet",
                 "--task", "regression", "--input", "x:float32:8",
                 "--input", "cat_id:int64::0..9", "--out", tmp_path / "catnet.onnx"))
    assert "parity PASSED" in out
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 8)).astype(np.float32)
    ids = np.array([0, 7, 9], dtype=np.int64)
    with torch.no_grad():
        want = net(torch.from_numpy(x), torch.from_numpy(ids)).numpy().reshape(-1)
    fn = app({"MODEL_URI": str(tmp_path / "catnet.onnx")})
    resp = fn.post("/predict", json={"instances": [
        {"x": row.tolist(), "cat_id": int(i)} for row, i in zip(x, ids, strict=True)]})
    assert resp.status_code == 200, resp.text
    got = [p["value"] for p in resp.json()["predictions"]]
    assert got == pytest.approx(want.tolist(), abs=1e-5)
    resp = fn.post("/v2/models/catnet/infer", json={"inputs": [
        {"name": "x", "datatype": "FP32", "shape": [3, 8], "data": x.ravel().tolist()},
        {"name": "cat_id", "datatype": "INT64", "shape": [3], "data": ids.tolist()}]})
    assert resp.status_code == 200, resp.text
    value, = resp.json()["outputs"]
    assert value["data"] == pytest.approx(want.tolist(), abs=1e-5)
