"""Issue 5 benchmark: 100 distinct lookup keys through /batch-predict vs a sequential loop.

    .venv/bin/python -m benchmarks.lookup_bench [--keys 100] [--latency 0.05] [--reps 5]
                                                [--concurrency N]

One run, one machine: a local feature service answering every key after ``--latency``
seconds, and the function (default LOOKUP_* settings) serving the iris model with a card
whose four features all come from that service. Measured in the same run:

- ``single_lookup_s``: one GET to the service (median of 10): the unit of the target;
- ``sequential_s``: the naive loop, one GET per key, one after another (keep-alive session);
- ``batch_cold_s``: the first /batch-predict of the instance (threads and sockets created);
- ``batch_s``: /batch-predict with fresh distinct keys on a warm instance (median of reps,
  after ``WARMUP`` batches of other fresh keys: connections and threads are in place);
- ``repeat_s`` and ``repeat_calls``: the same request again: calls reaching the service.

Pass criteria (issue 5): ``batch_s <= 3 * single_lookup_s`` and ``repeat_calls == 0``.
Writes benchmarks/results/lookups.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from benchmarks.harness import save
from functions.config.settings import Settings
from tests.feature_service import FeatureService, lookup_card
from tests.servers import start_function

WARMUP = 3
ALL_FEATURES = {"sepal_length": "sepal.length", "sepal_width": "sepal.width",
                "petal_length": "petal.length", "petal_width": "petal.width"}


def timed_batch(url: str, keys: list[str]) -> tuple[float, dict[str, Any]]:
    """Wall seconds of one /batch-predict whose instances carry only ``user_id``."""
    body = {"instances": [{"user_id": k} for k in keys]}
    t0 = time.perf_counter()
    resp = requests.post(url + "/batch-predict", json=body, timeout=60)
    elapsed = time.perf_counter() - t0
    resp.raise_for_status()
    answer = resp.json()
    if answer["errors"]:
        raise RuntimeError(f"lookups failed in the benchmark: {answer['predictions'][:3]}")
    return elapsed, answer


def sequential(service: FeatureService, keys: list[str]) -> float:
    """The naive baseline: one GET per key, each waiting for the previous one."""
    with requests.Session() as session:
        t0 = time.perf_counter()
        for key in keys:
            session.get(f"{service.url}/users/{key}", timeout=10).raise_for_status()
        return time.perf_counter() - t0


def single(service: FeatureService, runs: int = 10) -> float:
    """Median wall seconds of one lookup on a warm keep-alive connection."""
    times = []
    with requests.Session() as session:
        session.get(f"{service.url}/users/warm", timeout=10)
        for i in range(runs):
            t0 = time.perf_counter()
            session.get(f"{service.url}/users/single-{i}", timeout=10).raise_for_status()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(n_keys: int, latency: float, reps: int, concurrency: int | None) -> dict[str, Any]:
    service = FeatureService(latency=latency)
    tmp = Path(tempfile.mkdtemp(prefix="lookup-bench-"))
    spec = {"key_field": "user_id", "url_template": service.url + "/users/{key}",
            "features": ALL_FEATURES}
    card = lookup_card(tmp / "card.json", [spec])
    env = {"MODEL_CARD_URI": str(card), "LOG_LEVEL": "WARNING"}
    if concurrency:
        env["LOOKUP_CONCURRENCY"] = str(concurrency)
    fn = start_function(env, tmp)
    try:
        one = single(service)
        seq = sequential(service, [f"seq-{i}" for i in range(n_keys)])
        cold, _ = timed_batch(fn.url, [f"cold-{i}" for i in range(n_keys)])
        for r in range(WARMUP):  # the pool keeps adding sockets and threads for a few batches
            timed_batch(fn.url, [f"warmup{r}-{i}" for i in range(n_keys)])
        warm = []
        for r in range(reps):
            keys = [f"warm{r}-{i}" for i in range(n_keys)]
            before = service.total_calls
            elapsed, first = timed_batch(fn.url, keys)
            warm.append(elapsed)
            assert service.total_calls - before == n_keys, "each distinct key fetched once"
        before = service.total_calls
        repeat, again = timed_batch(fn.url, keys)
        repeat_calls = service.total_calls - before
        assert again["predictions"] == first["predictions"]
    finally:
        fn.stop()
        service.stop()
    batch = statistics.median(warm)
    return {
        "keys": n_keys, "service_latency_s": latency, "reps": reps, "warmup_batches": WARMUP,
        "lookup_concurrency": concurrency or Settings().lookup_concurrency,
        "single_lookup_s": round(one, 4), "sequential_s": round(seq, 3),
        "batch_cold_s": round(cold, 4), "batch_s": round(batch, 4),
        "batch_s_min_max": [round(min(warm), 4), round(max(warm), 4)],
        "batch_over_single": round(batch / one, 2), "sequential_over_batch": round(seq / batch, 1),
        "repeat_s": round(repeat, 4), "repeat_calls": repeat_calls,
        "pass": batch <= 3 * one and repeat_calls == 0,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print and save the figures; returns them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=None,
                        help="LOOKUP_CONCURRENCY for the function (default: the setting's)")
    args = parser.parse_args(argv)
    result = run(args.keys, args.latency, args.reps, args.concurrency)
    print(json.dumps(result, indent=2))
    print("saved", save("lookups", result))
    return result


if __name__ == "__main__":
    main()
