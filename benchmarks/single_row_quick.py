"""Single-row req/s of ours against the tuned handler only (a quick check while working on
the hot path; serving_bench is the measurement of record).

    .venv/bin/python -m benchmarks.single_row_quick [--rounds 7] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time

from benchmarks.harness import (
    ROOT,
    SETOSA,
    cpu_ticks,
    median,
    pause,
    spawn,
    stop,
    wait_ready,
    worker_pid,
    wrk,
)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=VALUE",
                        help="also serve ours with this environment variable (repeatable)")
    args = parser.parse_args(argv)
    one = json.dumps({"instances": [SETOSA]}).encode()
    model = str(ROOT / "models" / "iris.onnx")
    servers = {"ours": spawn(str(ROOT / "main.py"), {}),
               "tuned": spawn(str(ROOT / "benchmarks" / "tuned_handler.py"),
                              {"MODEL_PATH": model})}
    for variant in args.variant:
        name, _, value = variant.partition("=")
        servers[f"ours {variant}"] = spawn(str(ROOT / "main.py"), {name: value})
    rates: dict[str, list[float]] = {name: [] for name in servers}
    per_cpu: dict[str, list[float]] = {name: [] for name in servers}
    try:
        for proc, url in servers.values():
            wait_ready(url + "/", proc, one)
            pause(proc, True)
        for round_ in range(args.rounds):  # ABBA: every other round in reverse
            order = list(servers.items())
            for name, (proc, url) in order[::-1] if round_ % 2 else order:
                pause(proc, False)
                time.sleep(0.2)
                pids = [proc.pid, worker_pid(proc.pid)]
                ticks = cpu_ticks(pids)
                rate = wrk(url + "/", one, args.seconds, 8)
                cpu = (cpu_ticks(pids) - ticks) / os.sysconf("SC_CLK_TCK")
                rates[name].append(rate)
                per_cpu[name].append(rate * args.seconds / cpu)
                pause(proc, True)
    finally:
        for proc, _ in servers.values():
            pause(proc, False)
            stop(proc)
    print({n: [round(x) for x in r] for n, r in rates.items()})
    for name in rates:
        ratios = [a / b for a, b in zip(rates[name], rates["tuned"])]
        print(f"{name}: {median(rates[name]):.0f} req/s, {median(ratios):.3f}x tuned",
              [round(r, 2) for r in ratios])
    for name in per_cpu:
        ratios = [a / b for a, b in zip(per_cpu[name], per_cpu["tuned"])]
        print(f"{name}: {median(per_cpu[name]):.0f} requests per CPU-second, "
              f"{median(ratios):.3f}x tuned", [round(r, 2) for r in ratios])
    return median([a / b for a, b in zip(rates["ours"], rates["tuned"])])


if __name__ == "__main__":
    main()
