"""Issue 25 item 1's concurrent step read literally: ``--clients`` clients each post the
whole 1,000-text /predict, then the whole 20,000-text /batch-predict (``--plan``), all at
once, to one production server at the deploy memory setting, for at most ``--seconds``.

    .venv/bin/python -m benchmarks.memory_flood [--int8 | --both] [--clients 16]
        [--plan predict,batch-predict] [--seconds 600] [--warm]

The texts and servers are benchmarks.memory_acceptance's (MiniLM fp32 / int8, REQUESTS_MEMORY_MB,
MODEL_CALL_MEMORY_MB and ADMISSION_WAIT_SECONDS at their defaults). ``--warm``: one whole
1,000-text /predict first, alone, so that onnxruntime's arena is at its high before the
flood. The worker's VmHWM and VmRSS are read every 2 s. Each client behaves as a client of
a serving product does: a 503 with a Retry-After is sent again after that many seconds;
anything else but a 200 is a failure. Every 200 is checked: one unit-norm embedding per
text, no item error, and 8 texts of each request against the same text sent alone before
the flood (cosine as in memory_acceptance). When ``--seconds`` are over the server is
stopped; requests still unanswered then are counted as unfinished (on this 2-vCPU VM
the whole flood takes far longer than a session can wait). Exits non-zero on any failure
or a peak at ``--limit-mib``. Writes benchmarks/results/memory_flood.json.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import requests

from benchmarks.harness import save
from benchmarks.memory_acceptance import (
    LEAST_COSINE,
    model_options,
    models_chosen,
    served,
    status_mib,
    texts,
)

PICKED = 8


def check(answer: requests.Response, batch: list[str], alone: np.ndarray, least: float) -> str:
    """'' if ``answer`` holds one unit-norm embedding per text of ``batch``, no item error,
    and the picked texts' embeddings equal ``alone``; else what is wrong."""
    body = orjson.loads(answer.content)
    rows = body["predictions"]
    if len(rows) != len(batch) or body.get("errors", 0):
        return f"{len(rows)} answers for {len(batch)} texts, {body.get('errors')} errors"
    picked = np.array([rows[i]["embedding"] for i in picks(len(batch))], dtype=np.float32)
    norms = np.linalg.norm(np.array([row["embedding"] for row in rows], dtype=np.float32), axis=1)
    if not np.all(np.abs(norms - 1) < 1e-3):
        return f"embeddings not unit norm ({norms.min()}-{norms.max()})"
    cosine = float((picked * alone).sum(1).min())
    return "" if cosine >= least else f"cosine {cosine} to the text sent alone"


def picks(n: int) -> list[int]:
    return list(range(0, n, n // PICKED))[:PICKED]


def client(base: str, plan: list[str], bodies: dict[str, tuple[bytes, list[str]]],
           alone: dict[str, np.ndarray], least: float, deadline: float,
           tally: Counter, failures: list[str]) -> None:
    """Post each route of ``plan`` in turn until answered, honouring 503 Retry-After."""
    for route in plan:
        body, batch = bodies[route]
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                tally[f"{route} unfinished"] += 1
                return
            try:
                answer = requests.post(base + route, data=body, timeout=(10, left),
                                       headers={"content-type": "application/json"})
            except requests.RequestException as exc:
                if time.monotonic() < deadline - 1:
                    failures.append(f"{route}: {exc!r}")
                    tally[f"{route} failed"] += 1
                else:
                    tally[f"{route} unfinished"] += 1
                return
            if answer.status_code == 503 and "retry-after" in answer.headers:
                tally[f"{route} 503"] += 1
                pause = float(answer.headers["retry-after"]) * random.uniform(1, 1.2)
                time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
                continue
            wrong = f"{answer.status_code} {answer.text[:200]}" if answer.status_code != 200 \
                else check(answer, batch, alone[route], least)
            tally[f"{route} {'failed' if wrong else 'answered'}"] += 1
            if wrong:
                failures.append(f"{route}: {wrong}")
                return
            break


def flood(kind: str, model: Path, clients: int, plan: list[str], seconds: float,
          warm: bool) -> dict:
    """One flood against a fresh server for ``model``; the samples, tallies and failures."""
    long, varied = texts()
    batches = {"/predict": long, "/batch-predict": varied}
    bodies = {r: (orjson.dumps({"instances": b}), b) for r, b in batches.items()}
    with served(model) as (base, pid):
        alone = {r: np.array([orjson.loads(requests.post(
            base + "/predict", json={"instances": [b[i]]}, timeout=600).content)
            ["predictions"][0]["embedding"] for i in picks(len(b))], dtype=np.float32)
            for r, b in batches.items()}
        result: dict = {"kind": kind, "clients": clients, "plan": plan, "seconds": seconds,
                        "load_before": os.getloadavg(), "ready": status_mib(pid)}
        if warm:
            t0 = time.perf_counter()
            answer = requests.post(base + "/predict", data=bodies["/predict"][0], timeout=1800,
                                   headers={"content-type": "application/json"})
            assert answer.status_code == 200, answer.text[:300]
            result["warm"] = {**status_mib(pid), "wall_s": time.perf_counter() - t0}
            print(f"{kind} warm: {result['warm']}", flush=True)
        tally: Counter = Counter()
        failures: list[str] = []
        deadline = time.monotonic() + seconds
        routes = ["/" + r.strip("/") for r in plan]
        threads = [threading.Thread(target=client, daemon=True, args=(
            base, routes, bodies, alone, LEAST_COSINE[kind], deadline, tally, failures))
            for _ in range(clients)]
        for thread in threads:
            thread.start()
        samples = []
        while time.monotonic() < deadline and any(t.is_alive() for t in threads):
            time.sleep(2)
            samples.append(status_mib(pid))
            if len(samples) % 15 == 0:
                print(f"{kind} {len(samples) * 2:4d} s: {samples[-1]} {dict(tally)}",
                      flush=True)
        result["load_after"] = os.getloadavg()
    for thread in threads:
        thread.join(30)
    result.update(peak_mib=max(s["VmHWM"] for s in samples), last=samples[-1],
                  tally=dict(tally), failures=failures[:20])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    model_options(parser)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--plan", default="predict,batch-predict",
                        help="routes each client posts in turn, each with its whole texts")
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--warm", action="store_true")
    parser.add_argument("--limit-mib", type=float, default=1024.0)
    args = parser.parse_args(argv)
    results = []
    for kind, model in models_chosen(args).items():
        r = flood(kind, model(), args.clients, args.plan.split(","), args.seconds, args.warm)
        results.append(r)
        print(f"{kind}: peak VmHWM {r['peak_mib']:,.0f} MiB, {r['tally']}, load "
              f"{r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f}", flush=True)
        for failure in r["failures"]:
            print("  failure:", failure)
    save("memory_flood", {"results": results, "limit_mib": args.limit_mib})
    bad = any(r["failures"] or r["peak_mib"] >= args.limit_mib for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
