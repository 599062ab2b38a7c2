"""The hot path against what a user would write or pick instead, same model, same run.

    make bench            # or: .venv/bin/python -m benchmarks.serving_bench [--seconds 4]

Servers (all on uvicorn with the same uvloop and httptools, the function and the tuned
handler under functions-framework's production server):
- ``ours``: this function (full validation, error contract, dedupe, metrics);
- ``tuned``: the baseline, benchmarks/tuned_handler.py, the 20-line handler a good
  engineer writes (orjson in and out, one intra-op thread, no spinning);
- ``fastapi``: benchmarks/peers/fastapi_app.py, the FastAPI service people write first;
- ``litserve``: benchmarks/peers/litserve_app.py, LitServe with one CPU worker.

Measured: single-row req/s at 8 connections (every server at its own URL, ``POST /``: the
function's URL predicts, as the tuned handler's does) and 1,000-row batches (distinct rows:
dedupe cannot help) at 2 connections, ours in both answer formats (``/batch-predict``, one
object per row, and ``/batch-predict?format=columns``, one array per field like the
baseline's bare probabilities), wrk alternating between the servers round after round (the
ratio is the median of per-round ratios); cold start (spawn -> first 200) of ours and the
baseline, alternating; then, for ours alone, the worker's RSS before and after 500k
requests at 64 connections, and its CPU while idle for 10 s. Writes
benchmarks/results/serving.json, docs/serving_ratios.png and the README's serving table
(benchmarks.serving_table).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks.harness import (
    RESULTS,
    ROOT,
    SETOSA,
    cold_starts,
    cpu_ticks,
    free_port,
    median,
    pause,
    rss_kib,
    save,
    spawn,
    stop,
    wait_ready,
    worker_pid,
    wrk,
)
from benchmarks.serving_table import write_readme

MODEL = ROOT / "models" / "iris.onnx"
PY = sys.executable


def batch_rows(n: int) -> list[list[float]]:
    rng = np.random.default_rng(0)
    return (rng.uniform(0.1, 7.0, size=(n, 4))).round(3).tolist()  # distinct rows


def start_all() -> dict[str, tuple[subprocess.Popen, str, str, dict[str, str]]]:
    """name -> (process, base URL, single-row path, batch paths by answer format)."""
    env = {**os.environ, "MODEL_PATH": str(MODEL)}
    servers: dict[str, tuple[subprocess.Popen, str, str, dict[str, str]]] = {}
    proc, url = spawn(str(ROOT / "main.py"), {})
    servers["ours"] = (proc, url, "/", {"rows": "/batch-predict",
                                        "columns": "/batch-predict?format=columns"})
    proc, url = spawn(str(ROOT / "benchmarks" / "tuned_handler.py"), {"MODEL_PATH": str(MODEL)})
    servers["tuned"] = (proc, url, "/", {"rows": "/", "columns": "/"})
    port = free_port()
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "uvicorn"),
                             "benchmarks.peers.fastapi_app:app", "--port", str(port),
                             "--log-level", "warning"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    servers["fastapi"] = (proc, f"http://127.0.0.1:{port}", "/predict",
                          {"rows": "/predict", "columns": "/predict"})
    port = free_port()
    proc = subprocess.Popen([PY, "-m", "benchmarks.peers.litserve_app", str(port)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    servers["litserve"] = (proc, f"http://127.0.0.1:{port}", "/predict",
                           {"rows": "/predict", "columns": "/predict"})
    return servers


def throughput(seconds: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    """Per measure, per server, one rate per round. The peers have one answer format:
    each batch measure compares ours in that format with the same peer run."""
    one = json.dumps({"instances": [SETOSA]}).encode()
    many = json.dumps({"instances": batch_rows(1000)}).encode()
    servers = start_all()
    rates: dict[str, dict[str, list[float]]] = {
        "single_row_req_per_s": {n: [] for n in servers},
        "batch_1000_rows_per_s": {n: [] for n in servers},
        "batch_1000_columns_rows_per_s": {n: [] for n in servers}}
    try:
        for proc, url, single, _ in servers.values():
            wait_ready(url + single, proc, one)
            pause(proc, True)
        for round_ in range(rounds):  # ABBA: every other round in reverse, against drift
            order = list(servers.items())
            for name, (proc, url, single, batch) in order[::-1] if round_ % 2 else order:
                pause(proc, False)  # only the server being measured runs
                time.sleep(0.2)
                rates["single_row_req_per_s"][name].append(wrk(url + single, one, seconds, 8))
                rows = 1000 * wrk(url + batch["rows"], many, seconds, 2)
                rates["batch_1000_rows_per_s"][name].append(rows)
                rates["batch_1000_columns_rows_per_s"][name].append(
                    1000 * wrk(url + batch["columns"], many, seconds, 2)
                    if name == "ours" else rows)
                pause(proc, True)
    finally:
        for proc, *_ in servers.values():
            pause(proc, False)
            stop(proc)
    return rates


def soak(requests_total: int) -> dict[str, float]:
    """Worker RSS before/after ``requests_total`` single-row requests at 64 connections;
    CPU of arbiter + worker over 10 idle seconds, in % of one core."""
    one = json.dumps({"instances": [SETOSA]}).encode()
    proc, url = spawn(str(ROOT / "main.py"), {})
    try:
        wait_ready(url + "/predict", proc, one)
        wrk(url + "/predict", one, 3, 64)  # warm: caches, pools, allocator arenas
        worker = worker_pid(proc.pid)
        before = rss_kib(worker)
        done, t0 = 0, time.perf_counter()
        while done < requests_total:
            rate = wrk(url + "/predict", one, 10, 64)
            done += int(rate * 10)
        elapsed = time.perf_counter() - t0
        after = rss_kib(worker)
        time.sleep(2)
        ticks0, t1 = cpu_ticks([proc.pid, worker]), time.perf_counter()
        time.sleep(10)
        idle = (cpu_ticks([proc.pid, worker]) - ticks0) / os.sysconf("SC_CLK_TCK")
        idle_pct = 100 * idle / (time.perf_counter() - t1)
    finally:
        stop(proc)
    return {"requests": done, "seconds": round(elapsed, 1), "rss_before_kib": before,
            "rss_after_kib": after, "rss_growth": round(after / before - 1, 4),
            "idle_cpu_percent_of_core": round(idle_pct, 3)}


def plot(summary: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    peers = ["tuned", "fastapi", "litserve"]
    fig, ax = plt.subplots(figsize=(7.6, 3.6))
    width = 0.27
    for k, (measure, label) in enumerate((
            ("single_row_req_per_s", "single row"),
            ("batch_1000_rows_per_s", "1,000 rows, row objects"),
            ("batch_1000_columns_rows_per_s", "1,000 rows, ?format=columns"))):
        ratios = [summary[measure]["ratios"][p] for p in peers]
        bars = ax.bar([i + k * width for i in range(len(peers))], ratios, width, label=label)
        ax.bar_label(bars, fmt="%.2fx", fontsize=8)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xticks([i + width for i in range(len(peers))],
                  ["tuned 20-line handler", "FastAPI", "LitServe"])
    ax.set_ylabel("this function / peer")
    ax.set_title("throughput ratio, iris model, 2 vCPU (higher is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=3, help="wrk duration per measurement")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds per measure")
    parser.add_argument("--cold-runs", type=int, default=21)
    parser.add_argument("--soak-requests", type=int, default=500_000)
    args = parser.parse_args(argv)
    rates = throughput(args.seconds, args.rounds)
    summary: dict = {}
    for measure, by_name in rates.items():
        summary[measure] = {"median": {n: median(v) for n, v in by_name.items()},
                            "ratios": {n: median([a / b for a, b in zip(by_name["ours"], v)])
                                       for n, v in by_name.items() if n != "ours"}}
    cache = tempfile.mkdtemp(prefix="bench-")
    cold = cold_starts({"ours": (str(ROOT / "main.py"), {}, "/"),
                        "tuned": (str(ROOT / "benchmarks" / "tuned_handler.py"),
                                  {"MODEL_PATH": str(MODEL)}, "/")}, args.cold_runs)
    shutil.rmtree(cache, ignore_errors=True)
    summary["cold_start_s"] = {
        "median": {n: median(v) for n, v in cold.items()},
        "ratio_vs_tuned": median([a / b for a, b in zip(cold["ours"], cold["tuned"])])}
    summary["soak"] = soak(args.soak_requests)
    RESULTS.mkdir(parents=True, exist_ok=True)
    plot(summary, str(RESULTS / "serving_ratios.png"))
    shutil.copy(RESULTS / "serving_ratios.png", ROOT / "docs" / "serving_ratios.png")
    result = {"rates": rates, "cold": cold, "summary": summary,
              "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": " ".join([".venv/bin/python -m benchmarks.serving_bench",
                                   *(sys.argv[1:] if argv is None else argv)])}
    save("serving", result)
    write_readme(result)  # the README's serving table (benchmarks.serving_table)
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
