"""A 100 MB+ ONNX model generated for the tests, and cold starts of the production server
serving it (functions-framework's command line without --debug: gunicorn arbiter + worker).

Scenarios of one cold start (issue 11), each from a local model host:
    empty      an empty cache, over HTTP
    warm       the cache already holds the model (it is verified, not downloaded)
    https      an empty cache, over HTTPS (TLS state must not cross the fork)
    late-fork  gunicorn forks only once a download is in progress (tests/fork_gate
               holds the fork until then; the host streams slowly): the fetch ahead's,
               which the fork then waits for (functions/loading/early_fetch.py)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.servers import ROOT, start_function

SCENARIOS = ("empty", "warm", "https", "late-fork")
HIDDEN = 5_300_000  # 4 x HIDDEN + HIDDEN float32 weights: 106 MB
DOWNLOAD_RATE = 40e6  # bytes/s in the ``late-fork`` scenario: ~2.6 s for the model
HANG_BOUND = 120.0  # seconds to readiness before a cold start counts as hung (not a speed)
ROW = [0.5, -1.0, 2.0, 0.25]


@dataclass(frozen=True)
class LargeModel:
    path: Path
    card: dict
    expected: float
    """The value the model computes for ROW (numpy, float64 accumulation)."""


def build_large_model(folder: Path, hidden: int = HIDDEN) -> LargeModel:
    """``folder/big.onnx`` (a regressor whose two large weights the graph uses) and its card
    with the file's sha256: value = relu(x @ w1) @ w2."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    w1 = rng.standard_normal((4, hidden), dtype=np.float32)
    w2 = (rng.standard_normal((hidden, 1), dtype=np.float32) / np.sqrt(hidden)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["value"])], "large",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("value", TensorProto.FLOAT, [None, 1])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "big.onnx"
    onnx.save(model, path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    card = {"name": "big", "version": "1", "sha256": digest.hexdigest(), "task": "regression",
            "value_output": "value",
            "inputs": [{"name": "x", "dtype": "float32", "shape": [None, 4]}],
            "outputs": [{"name": "value", "dtype": "float32", "shape": [None, 1]}]}
    (folder / "big.card.json").write_text(json.dumps(card))
    hidden_out = np.maximum(np.asarray(ROW, np.float64) @ w1, 0)
    return LargeModel(path, card, float(hidden_out @ w2[:, 0]))


@dataclass(frozen=True)
class ColdStart:
    ready: bool
    seconds: float
    value: float | None
    gate: str
    """What tests/fork_gate said of the fork's moment ("" without a gate)."""
    detail: str


def cold_start(scenario: str, model: LargeModel, host_url: str, tmp: Path,
               env: dict[str, str] | None = None) -> ColdStart:
    """One production-server cold start in ``scenario`` from the host at ``host_url`` (it
    must stream at DOWNLOAD_RATE for ``late-fork``), with ``env`` added (REQUESTS_CA_BUNDLE
    for https). Everything under ``tmp`` is removed afterwards."""
    cache = tmp / "model-cache"
    tmp.mkdir(parents=True)
    env = {"MODEL_URI": f"{host_url}/big.onnx", **(env or {})}
    if scenario == "warm":
        cache.mkdir()
        os.link(model.path, cache / f"{model.card['sha256']}.onnx")
    if scenario == "late-fork":
        env |= {"PYTHONPATH": str(ROOT / "tests" / "fork_gate"), "FORK_GATE": "download",
                "FORK_GATE_CACHE": str(cache), "FORK_WAIT_SECONDS": "0.3"}
    t0 = time.monotonic()
    try:
        served = start_function(env, tmp, timeout=HANG_BOUND)
    except RuntimeError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        return ColdStart(False, time.monotonic() - t0, None, "", str(exc)[-2000:])
    seconds = time.monotonic() - t0
    try:
        resp = served.post("/predict", json={"instances": [ROW]})
        value = resp.json()["predictions"][0]["value"] if resp.status_code == 200 else None
        gate = next((line for line in served.log().splitlines()
                     if line.startswith("fork gate:")), "")
        return ColdStart(True, seconds, value, gate, resp.text[:300])
    finally:
        served.stop()
        shutil.rmtree(tmp, ignore_errors=True)
