"""Run every benchmark in one go: ``make bench`` (= ``python -m benchmarks``).

Each benchmark compares against its own baseline inside the same run, so the ratios hold
on a shared, noisy machine even when the absolute numbers move. Results land in
benchmarks/results/*.json; README.md records a run of each.
"""

from __future__ import annotations

import importlib
import sys

BENCHES = ["serving_bench", "hot_path_profile", "oip_bench", "lookup_bench", "text_bench",
           "batching_bench"]


def main() -> int:
    only = sys.argv[1:] or BENCHES
    for name in only:
        print(f"== {name}", flush=True)
        importlib.import_module(f"benchmarks.{name}").main([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
