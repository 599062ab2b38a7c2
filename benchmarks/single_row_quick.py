"""Single-row req/s of ours against the tuned handler only (a quick check while working on
the hot path; serving_bench is the measurement of record).

    .venv/bin/python -m benchmarks.single_row_quick [--rounds 7] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import time

from benchmarks.harness import ROOT, SETOSA, median, pause, spawn, stop, wait_ready, wrk


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args(argv)
    one = json.dumps({"instances": [SETOSA]}).encode()
    model = str(ROOT / "models" / "iris.onnx")
    servers = {"ours": spawn(str(ROOT / "main.py"), {}),
               "tuned": spawn(str(ROOT / "benchmarks" / "tuned_handler.py"),
                              {"MODEL_PATH": model})}
    rates: dict[str, list[float]] = {name: [] for name in servers}
    try:
        for proc, url in servers.values():
            wait_ready(url + "/", proc, one)
            pause(proc, True)
        for _ in range(args.rounds):
            for name, (proc, url) in servers.items():
                pause(proc, False)
                time.sleep(0.2)
                rates[name].append(wrk(url + "/", one, args.seconds, 8))
                pause(proc, True)
    finally:
        for proc, _ in servers.values():
            pause(proc, False)
            stop(proc)
    ratios = [a / b for a, b in zip(rates["ours"], rates["tuned"])]
    print({name: round(median(r)) for name, r in rates.items()},
          "ratio", round(median(ratios), 3), [round(r, 2) for r in ratios])
    return median(ratios)


if __name__ == "__main__":
    main()
