"""Adaptive batching: BATCHING=auto against BATCHING=off, same run, production server.

    .venv/bin/python -m benchmarks.batching_bench [--seconds 8] [--rounds 2]

all-MiniLM-L6-v2 (exported once into benchmarks/results/minilm/), one 16-token sentence
per request, wrk at 1, 4, 16 and 64 connections; then the demo iris model at 64
connections (auto must know when not to batch). Both servers run side by side and are
measured in turn, round after round; reported: requests/s and p50/p99 latency (wrk
--latency), medians over rounds, and auto/off ratios. Draws benchmarks/results/batching.png
(throughput and p99 against connections), copied to docs/batching.png for the README.
Providers follow EXECUTION_PROVIDERS (``make bench-gpu`` sets gpu).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile

from benchmarks.harness import RESULTS, ROOT, SETOSA, median, save, spawn, stop, wait_ready
from benchmarks.text_bench import exported

SENTENCE = "the quick brown fox jumps over the lazy dog near the quiet river bank"
CONNECTIONS = (1, 4, 16, 64)
ORDER = ("auto", "off")  # measured in this order every round
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk_latency(url: str, body: bytes, seconds: int, connections: int) -> dict[str, float]:
    """{"rps", "p50_ms", "p99_ms"} from one wrk run (raises on any non-2xx answer)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                  f"wrk.body = {json.dumps(body.decode())}\n")
    threads = min(connections, 2)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
                          "--latency", "-s", lua.name, url],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(lua.name)
    if "Non-2xx" in out:
        raise RuntimeError(f"non-2xx answers during the run:\n{out}")

    def pct(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out).groups()
        return float(value) * UNITS[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"rps": rps, "p50_ms": pct("50"), "p99_ms": pct("99")}


def compare(model_env: dict[str, str], body: bytes, connections: tuple[int, ...],
            seconds: int, rounds: int) -> dict[str, dict[int, list[dict[str, float]]]]:
    runs: dict[str, dict[int, list[dict[str, float]]]] = {
        mode: {c: [] for c in connections} for mode in ORDER}
    servers = {mode: spawn(str(ROOT / "main.py"), {**model_env, "BATCHING": mode})
               for mode in runs}
    try:
        for proc, url in servers.values():
            wait_ready(url + "/predict", proc, body)
        for _ in range(rounds):
            for c in connections:
                for mode, (_, url) in servers.items():
                    runs[mode][c].append(wrk_latency(url + "/predict", body, seconds, c))
        for mode, (_, url) in servers.items():
            import requests

            runs[mode]["state"] = requests.get(url + "/model", timeout=5).json()["batching"]
    finally:
        for proc, _ in servers.values():
            stop(proc)
    return runs


def summary(runs: dict) -> dict:
    out: dict = {}
    for c in [k for k in runs["auto"] if isinstance(k, int)]:
        row = {}
        for mode in ("auto", "off"):
            for key in ("rps", "p50_ms", "p99_ms"):
                row[f"{mode}_{key}"] = round(median([r[key] for r in runs[mode][c]]), 3)
        row["throughput_ratio"] = round(row["auto_rps"] / row["off_rps"], 3)
        row["p99_ratio"] = round(row["auto_p99_ms"] / row["off_p99_ms"], 3)
        row["p50_ratio"] = round(row["auto_p50_ms"] / row["off_p50_ms"], 3)
        out[c] = row
    return out


def plot(table: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cs = sorted(table)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for mode, style in (("auto", "o-"), ("off", "s--")):
        left.plot(cs, [table[c][f"{mode}_rps"] for c in cs], style, label=f"BATCHING={mode}")
        right.plot(cs, [table[c][f"{mode}_p99_ms"] for c in cs], style, label=f"BATCHING={mode}")
    for ax, title in ((left, "throughput (req/s)"), (right, "p99 latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(cs, [str(c) for c in cs])
        ax.set_xlabel("connections")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("all-MiniLM-L6-v2, one sentence per request, 2 vCPU")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    minilm = compare({"MODEL_URI": str(exported())},
                     json.dumps({"instances": [SENTENCE]}).encode(), CONNECTIONS,
                     args.seconds, args.rounds)
    iris = compare({}, json.dumps({"instances": [SETOSA]}).encode(), (64,),
                   args.seconds, args.rounds)
    result = {"minilm": summary(minilm), "iris": summary(iris),
              "state": {"minilm": minilm["auto"]["state"], "iris": iris["auto"]["state"]},
              "providers": os.environ.get("EXECUTION_PROVIDERS", "cpu")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    png = RESULTS / "batching.png"
    plot(result["minilm"], str(png))
    if result["providers"] == "cpu":
        shutil.copy(png, ROOT / "docs" / "batching.png")
    save("batching_bench" + ("" if result["providers"] == "cpu" else "_gpu"),
         {"runs": {"minilm": minilm, "iris": iris}, "summary": result})
    print(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
