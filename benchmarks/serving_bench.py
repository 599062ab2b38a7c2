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

from benchmarks.harness import ROOT, SETOSA, cold_start, median, save, spawn, stop, wait_ready, wrk

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


def throughput(source: str, env: dict[str, str], single_path: str, batch_path: str,
               seconds: int) -> tuple[float, float]:
    one = json.dumps({"instances": [SETOSA]}).encode()
    many = json.dumps({"instances": batch_rows(1000)}).encode()
    proc, url = spawn(source, env)
    try:
        wait_ready(url + single_path, proc, one)
        wrk(url + single_path, one, 2)  # warm-up, discarded
        single = wrk(url + single_path, one, seconds)
        batch = wrk(url + batch_path, many, seconds, connections=2) * 1000
    finally:
        stop(proc)
    return single, batch


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per measurement")
    parser.add_argument("--cold-runs", type=int, default=9)
    args = parser.parse_args(argv)
    ours_src, base_src = str(ROOT / "main.py"), str(ROOT / "benchmarks" / "minimal_handler.py")
    base_env = {"MODEL_PATH": str(MODEL)}
    ours_single, ours_batch = throughput(ours_src, {}, "/predict", "/batch-predict", args.seconds)
    base_single, base_batch = throughput(base_src, base_env, "/", "/", args.seconds)
    ort_single, ort_batch = in_process(batch_rows(1000), 3.0)
    ours_cold = cold_start(ours_src, {}, "/predict", args.cold_runs)
    base_cold = cold_start(base_src, base_env, "/", args.cold_runs)
    result = {
        "single_row_req_per_s": {"ours": ours_single, "minimal": base_single,
                                 "onnxruntime_in_process": ort_single,
                                 "ratio_vs_minimal": ours_single / base_single},
        "batch_1000_rows_per_s": {"ours": ours_batch, "minimal": base_batch,
                                  "onnxruntime_in_process": ort_batch,
                                  "ratio_vs_minimal": ours_batch / base_batch},
        "cold_start_s_median": {"ours": median(ours_cold), "minimal": median(base_cold),
                                "ratio_vs_minimal": median(ours_cold) / median(base_cold),
                                "runs_ours": ours_cold, "runs_minimal": base_cold},
    }
    print(json.dumps(result, indent=2))
    print("saved", save("serving", result))
    return result


if __name__ == "__main__":
    main()
