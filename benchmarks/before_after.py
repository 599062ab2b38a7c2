"""This checkout against an earlier one, served side by side in the same run.

    git clone -q . /tmp/base && git -C /tmp/base checkout -q <commit>
    .venv/bin/python -m benchmarks.before_after /tmp/base [--rounds 9] [--seconds 3]

Both trees are served by this venv's functions-framework (production server, defaults),
each from its own folder. Per round, wrk drives each server in turn (ABBA order, the
other one frozen with SIGSTOP) for: one row at 8 connections (``POST /``), 1,000 distinct
rows at 2 connections as rows and as columns; with ``--text``, all-MiniLM-L6-v2 at 1 and 16
connections, one sentence a request. The figure of each measure is the median
of per-round ratios (this / base); requests per CPU-second of the server's processes are
reported beside req/s, being less sensitive to what else the machine runs. With
``--same-core``, the tabular measures run once more with both servers pinned to one CPU
and driven at the same time (``side_by_side``): a shared VM's speed moves between one
window and the next, which alternation cannot cancel and which falls on both servers
alike side by side (A/A runs of both ways: docs/benchmarks.md). Then cold start from
outside: spawn -> first 200 of ``POST /predict``, ``--cold-runs`` starts each,
alternating, fresh model cache each. Writes benchmarks/results/before_after.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.harness import (
    FF,
    ROOT,
    SETOSA,
    cpu_ticks,
    first_200,
    free_port,
    median,
    pause,
    pin_server,
    save,
    stop,
    wait_ready,
    worker_pid,
    wrk,
    wrk_at_once,
)
from benchmarks.serving_bench import batch_rows


def serve(tree: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """functions-framework serving ``tree/main.py`` from ``tree`` (its own ``functions``)."""
    port = free_port()
    proc = subprocess.Popen([FF, "--target", "predict", "--source", str(tree / "main.py"),
                             "--asgi", "--host", "127.0.0.1", "--port", str(port)], cwd=tree,
                            env={**os.environ, "PORT": str(port), **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


TABULAR = {"single_row": ("/", 8, 1), "batch_1000_rows": ("/batch-predict", 2, 1000),
           "batch_1000_columns": ("/batch-predict?format=columns", 2, 1000)}
TEXT = {"minilm_1_connection": ("/", 1, 1), "minilm_16_connections": ("/", 16, 1)}


def _tabular_bodies() -> dict[int, bytes]:
    """The demo model's bodies by rows: one setosa row, 1,000 distinct rows."""
    return {1: json.dumps({"instances": [SETOSA]}).encode(),
            1000: json.dumps({"instances": batch_rows(1000)}).encode()}


def throughput(trees: dict[str, Path], rounds: int, seconds: int,
               text: bool = False) -> dict[str, dict]:
    """The tabular measures on the demo model, or (``text``) MiniLM with one sentence a
    request (the model exported once into benchmarks/results/minilm/)."""
    env: dict[str, str] = {}
    if text:
        from benchmarks.batching_bench import SENTENCE
        from benchmarks.text_bench import exported

        env = {"MODEL_URI": str(exported())}
        bodies = {1: json.dumps({"instances": [SENTENCE]}).encode()}
    else:
        bodies = _tabular_bodies()
    measures = TEXT if text else TABULAR
    servers = {name: serve(tree, env) for name, tree in trees.items()}
    rates: dict = {m: {n: [] for n in trees} for m in measures}
    per_cpu: dict = {m: {n: [] for n in trees} for m in measures}
    try:
        for proc, url in servers.values():
            wait_ready(url + "/", proc, bodies[1])
            pause(proc, True)
        for round_ in range(rounds):
            order = list(servers.items())
            for name, (proc, url) in order[::-1] if round_ % 2 else order:
                pause(proc, False)
                time.sleep(0.2)
                pids = [proc.pid, worker_pid(proc.pid)]
                for measure, (path, conns, rows) in measures.items():
                    ticks = cpu_ticks(pids)
                    rate = rows * wrk(url + path, bodies[rows], seconds, conns)
                    cpu = (cpu_ticks(pids) - ticks) / os.sysconf("SC_CLK_TCK")
                    rates[measure][name].append(rate)
                    per_cpu[measure][name].append(rate * seconds / max(cpu, 1e-9))
                pause(proc, True)
    finally:
        for proc, _ in servers.values():
            pause(proc, False)
            stop(proc)
    return {m: {"rates": rates[m], "per_cpu_second": per_cpu[m]} for m in measures}


def side_by_side(trees: dict[str, Path], rounds: int, seconds: int) -> dict[str, dict]:
    """The tabular measures with both servers pinned to one CPU and driven at the same
    time (each by a wrk of its own on another CPU): the core's time is shared between them,
    so each round's ratio is that of their CPU cost per request, with whatever else the
    machine does falling on both at once."""
    bodies = _tabular_bodies()
    servers = {name: serve(tree) for name, tree in trees.items()}
    rates: dict = {m: {n: [] for n in trees} for m in TABULAR}
    try:
        for proc, url in servers.values():
            wait_ready(url + "/", proc, bodies[1])
            pin_server(proc, os.cpu_count() - 1)
        for _ in range(rounds):
            for measure, (path, conns, rows) in TABULAR.items():
                got = wrk_at_once([url + path for _, url in servers.values()], bodies[rows],
                                  seconds, conns, cpu=0)
                for name, rate in zip(servers, got):
                    rates[measure][name].append(rows * rate)
    finally:
        for proc, _ in servers.values():
            stop(proc)
    return {m: {"rates": rates[m]} for m in TABULAR}


def cold_starts(trees: dict[str, Path], runs: int) -> dict[str, list[float]]:
    """Spawn -> first 200 of POST /predict, each tree in turn, fresh model cache each."""
    body = json.dumps({"instances": [SETOSA]}).encode()
    times: dict[str, list[float]] = {n: [] for n in trees}
    for round_ in range(runs):
        order = list(trees.items())
        for name, tree in order[::-1] if round_ % 2 else order:
            cache = tempfile.mkdtemp(prefix="bench-cache-")
            t0 = time.perf_counter()
            proc, url = serve(tree, {"MODEL_CACHE_DIR": cache})
            try:
                first_200(url + "/predict", body, proc)
                times[name].append(time.perf_counter() - t0)
            finally:
                stop(proc)
                shutil.rmtree(cache, ignore_errors=True)
    return times


def _ratio(values: dict[str, list[float]]) -> float:
    pairs = zip(values["this"], values["base"])
    return median([a / b for a, b in pairs])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", type=Path, help="a checkout of the earlier commit")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--cold-runs", type=int, default=21)
    parser.add_argument("--text", action="store_true",
                        help="also MiniLM at 1 and 16 connections, one sentence a request")
    parser.add_argument("--same-core", action="store_true",
                        help="also the tabular measures side by side on one CPU "
                             "(side_by_side): the finer comparison of CPU per request")
    args = parser.parse_args(argv)
    trees = {"this": ROOT, "base": args.base.resolve()}
    for tree in trees.values():  # bytecode compiled, as the container images are
        subprocess.run([str(Path(FF).parent / "python"), "-m", "compileall", "-q", "main.py",
                        "functions"], cwd=tree, check=True)
    result: dict = {"base": str(args.base), "rounds": args.rounds, "seconds": args.seconds}
    measured = throughput(trees, args.rounds, args.seconds)
    if args.text:
        measured.update(throughput(trees, args.rounds, args.seconds, text=True))
    for measure, data in measured.items():
        result[measure] = {**data, "ratio": _ratio(data["rates"]),
                           "ratio_per_cpu_second": _ratio(data["per_cpu_second"])}
        print(f"{measure}: this/base {result[measure]['ratio']:.3f}x req/s, "
              f"{result[measure]['ratio_per_cpu_second']:.3f}x per CPU-second")
    if args.same_core:
        for measure, data in side_by_side(trees, args.rounds, args.seconds).items():
            ratios = [a / b for a, b in zip(data["rates"]["this"], data["rates"]["base"])]
            found = result[f"{measure}_same_core"] = {
                **data, "ratio": _ratio(data["rates"]),
                "quartiles": statistics.quantiles(ratios, n=4) if len(ratios) > 1
                else ratios * 3}
            quartiles = ", ".join(f"{q:.3f}" for q in found["quartiles"])
            print(f"{measure}, side by side on one CPU: this/base {found['ratio']:.3f}x req/s "
                  f"(quartiles {quartiles})")
    if args.cold_runs:
        cold = cold_starts(trees, args.cold_runs)
        result["cold_start_s"] = {**cold, "median": {n: median(v) for n, v in cold.items()},
                                  "ratio": _ratio(cold)}
        print(f"cold start: this {median(cold['this']):.3f} s, base {median(cold['base']):.3f}"
              f" s, this/base {result['cold_start_s']['ratio']:.3f}x (lower is better)")
    save("before_after", result)
    return result


if __name__ == "__main__":
    main()
