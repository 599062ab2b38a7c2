"""Issue 2 benchmark: this function vs a minimal handler vs onnxruntime in-process.

    make bench            # or: .venv/bin/python -m benchmarks.serving_bench [--seconds 10]

Same machine, same run, same bundled model. Reports single-row req/s (/predict), 1,000-row
batch rows/s (/batch-predict), and cold start (process spawn -> first 200 from /predict),
each as a ratio to the minimal functions-framework ASGI handler.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import onnxruntime as ort

from benchmarks.harness import ROOT, SETOSA, cold_starts, median, save, spawn, stop, wait_ready, wrk

MODEL = ROOT / "models" / "iris.onnx"


def batch_rows(n: int) -> list[list[float]]:
    rng = np.random.default_rng(0)
    return (rng.uniform(0.1, 7.0, size=(n, 4))).round(3).tolist()  # distinct rows: no dedupe help


def in_process(rows: list[list[float]], seconds: float) -> tuple[float, float]:
    """(single-row calls/s, 1,000-row batch rows/s) of session.run alone."""
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    one = np.asarray([SETOSA], dtype=np.float32)
    many = np.asarray(rows, dtype=np.float32)
    rates = []
    for x in (one, many):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            session.run(None, {"input": x})
            n += 1
        rates.append(n * len(x) / (time.perf_counter() - t0))
    return rates[0], rates[1]


def interleaved(targets: dict[str, tuple[str, str]], body: bytes, seconds: int, rounds: int,
                connections: int) -> dict[str, list[float]]:
    """wrk against each target in turn, ``rounds`` times: drift on a shared machine hits
    every target alike, and the per-round ratios cancel most of it."""
    rates: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, (url, path) in targets.items():
            rates[name].append(wrk(url + path, body, seconds, connections))
    return rates


def throughput(seconds: int, rounds: int) -> dict[str, dict[str, float]]:
    """Single-row and 1,000-row rates of both servers, running side by side (one idles)."""
    one = json.dumps({"instances": [SETOSA]}).encode()
    many = json.dumps({"instances": batch_rows(1000)}).encode()
    ours, ours_url = spawn(str(ROOT / "main.py"), {})
    base, base_url = spawn(str(ROOT / "benchmarks" / "minimal_handler.py"),
                           {"MODEL_PATH": str(MODEL)})
    try:
        wait_ready(ours_url + "/predict", ours, one)
        wait_ready(base_url + "/", base, one)
        single = {"ours": (ours_url, "/predict"), "minimal": (base_url, "/")}
        batch = {"ours": (ours_url, "/batch-predict"), "minimal": (base_url, "/")}
        interleaved(single, one, 2, 1, 8)  # warm-up, discarded
        results = {"single_row_req_per_s": interleaved(single, one, seconds, rounds, 8),
                   "batch_1000_rows_per_s": interleaved(batch, many, seconds, rounds, 2)}
    finally:
        stop(ours)
        stop(base)
    results["batch_1000_rows_per_s"] = {
        k: [r * 1000 for r in v] for k, v in results["batch_1000_rows_per_s"].items()}
    out = {}
    for measure, rates in results.items():
        ratios = [a / b for a, b in zip(rates["ours"], rates["minimal"])]
        out[measure] = {"ours": median(rates["ours"]), "minimal": median(rates["minimal"]),
                        "ratio_vs_minimal": median(ratios), "round_ratios": ratios}
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=4, help="wrk duration per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per measure")
    parser.add_argument("--cold-runs", type=int, default=11)
    args = parser.parse_args(argv)
    ours_src, base_src = str(ROOT / "main.py"), str(ROOT / "benchmarks" / "minimal_handler.py")
    result = throughput(args.seconds, args.rounds)
    ort_single, ort_batch = in_process(batch_rows(1000), 3.0)
    result["single_row_req_per_s"]["onnxruntime_in_process"] = ort_single
    result["batch_1000_rows_per_s"]["onnxruntime_in_process"] = ort_batch
    cold = cold_starts({"ours": (ours_src, {}, "/predict"),
                        "minimal": (base_src, {"MODEL_PATH": str(MODEL)}, "/")},
                       args.cold_runs)
    ratios = [a / b for a, b in zip(cold["ours"], cold["minimal"])]
    result["cold_start_s_median"] = {
        "ours": median(cold["ours"]), "minimal": median(cold["minimal"]),
        "ratio_vs_minimal": median(ratios), "runs_ours": cold["ours"],
        "runs_minimal": cold["minimal"]}
    print(json.dumps(result, indent=2))
    print("saved", save("serving", result))
    return result


if __name__ == "__main__":
    main()
