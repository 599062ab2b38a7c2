"""Server settings against each other on one embedding scenario, served side by side.

    .venv/bin/python -m benchmarks.embedding_knobs "" BATCH_MAX_WAIT_MS=3 INTRA_OP_THREADS=1 \\
        [--connections 16] [--sentences 1] [--rounds 4] [--seconds 8]

Each variant (settings joined with ``+``; ``""`` is the defaults) is a production server of
this checkout serving the embedding benchmark's fp32 MiniLM (``embedding_bench``'s export,
built by it on first use). Rounds alternate the variants (ABBA), the others frozen; wrk
posts distinct sentences of the benchmark's corpus through /predict. Reports sentences/s
(median over rounds) with p50 and p99.
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.embedding_bench import predict_body, wrk_bodies
from benchmarks.embedding_floor import corpus
from benchmarks.harness import RESULTS, ROOT, pause, spawn, stop, wait_ready


def main(argv: list[str] | None = None) -> dict[str, list[dict[str, float]]]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+", help='NAME=value[+NAME=value...], "" for none')
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--sentences", type=int, default=1, help="sentences a request")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args(argv)
    model = RESULTS / "minilm-hf" / "minilm.onnx"
    if not model.exists():
        raise SystemExit(f"{model} is missing: run benchmarks.embedding_bench once first")
    texts = corpus()
    n = args.sentences
    bodies = [predict_body(texts[i:i + n]) for i in range(0, len(texts) - n, n)]
    servers = {}
    for variant in args.variants:
        env = dict(kv.split("=", 1) for kv in variant.split("+") if kv)
        servers[variant] = spawn(str(ROOT / "main.py"), {"MODEL_URI": str(model), **env})
    found: dict[str, list[dict[str, float]]] = {v: [] for v in args.variants}
    try:
        for proc, url in servers.values():
            wait_ready(url + "/predict", proc, predict_body(["warm up"]))
            pause(proc, True)
        for round_ in range(args.rounds):
            order = args.variants if round_ % 2 == 0 else args.variants[::-1]
            chunk = bodies[round_ * 1000 % len(bodies):][:1000] or bodies[:1000]
            for variant in order:
                proc, url = servers[variant]
                pause(proc, False)
                time.sleep(0.3)
                found[variant].append(wrk_bodies(url + "/predict", chunk, args.seconds,
                                                 args.connections))
                pause(proc, True)
    finally:
        for proc, _ in servers.values():
            pause(proc, False)
            stop(proc)
    for variant, runs in found.items():
        rate = statistics.median(r["rps"] for r in runs) * n
        print(f"{variant or 'defaults'}: {rate:.0f} sentences/s, p50 "
              f"{statistics.median(r['p50_ms'] for r in runs):.1f} ms, p99 "
              f"{statistics.median(r['p99_ms'] for r in runs):.1f} ms")
    return found


if __name__ == "__main__":
    main()
