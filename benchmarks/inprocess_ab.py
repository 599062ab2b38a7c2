"""Checkouts against each other, in process, in interleaved bursts: CPU per request.

    git clone -q . /tmp/base && git -C /tmp/base checkout -q <commit>
    .venv/bin/python -m benchmarks.inprocess_ab /tmp/base . [--rounds 100] [--burst 500]
    .venv/bin/python -m benchmarks.inprocess_ab /tmp/base . --instructions 2000

A diagnostic for work on the request path, not a measurement of record (before_after.py
measures from outside, over the production server). Each checkout runs in a process of its
own (its own ``functions`` package) with functions-framework's ASGI app built from its
main.py, driven with ``POST /`` one single-row body at a time, no sockets. All processes
are pinned to one CPU; the bursts alternate between them (ABBA), so whatever else the
machine runs falls on every checkout alike. Reported: process CPU per request (median
over bursts) and, per checkout, the median of its per-burst ratios to the first one.

With ``--instructions N`` each checkout instead runs under valgrind's callgrind, and what is
reported is the instructions executed by N requests after warm-up (background threads
joined, counters zeroed), per request: a count that repeats within about 0.5% from run to
run whatever else the machine does, where timings here move by several percent. It is a
proxy for CPU time, not a measure of it (cache misses are not counted); checkouts are
counted two at a time, a minute or two each.

Why bursts: on a shared 2-vCPU machine, successive whole runs of one checkout, then the
other, differed by 20% and more; interleaved bursts of ~25 ms keep the ratio within a few
percent. A checkout may carry settings after ``@@`` (``./@@BATCHING=off``); ``--body``
(a file), ``--route``, ``--query`` and ``--model`` choose another request and model.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.harness import SETOSA

CHILD = r'''
import asyncio, os, sys, time
tree, burst, route, model = sys.argv[1], int(sys.argv[2]), sys.argv[4], sys.argv[5]
body, query = open(sys.argv[3], "rb").read(), sys.argv[6].encode()
os.chdir(tree)
sys.path.insert(0, tree)
os.environ.setdefault("MODEL_PATH", model or os.path.join(tree, "models", "iris.onnx"))
SCOPE = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
         "scheme": "http", "path": route, "raw_path": route.encode(), "query_string": query,
         "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
         "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                     (b"content-length", str(len(body)).encode())]}
statuses = []

async def receive():
    return {"type": "http.request", "body": body, "more_body": False}

async def send(message):
    if message["type"] == "http.response.start":
        statuses.append(message["status"])

async def main():
    from functions_framework.aio import create_asgi_app
    app = create_asgi_app(target="predict", source=os.path.join(tree, "main.py"))
    while not statuses or statuses[-1] != 200:  # the model loads in the background
        await app(dict(SCOPE), receive, send)
    for _ in range(2000):
        await app(dict(SCOPE), receive, send)
    await measure(app)

asyncio.run(main())
'''
TIMED = r'''
async def measure(app):
    print("ready", flush=True)
    for line in sys.stdin:
        statuses.clear()
        started = time.process_time()
        for _ in range(burst):
            await app(dict(SCOPE), receive, send)
        spent = time.process_time() - started
        ok = statuses.count(200) == burst
        print(f"{spent / burst * 1e6 if ok else -1.0}", flush=True)
'''
COUNTED = r'''
import subprocess, threading

async def measure(app):  # burst: how many requests to count
    for thread in threading.enumerate():  # calibration is done before counting starts
        if thread is not threading.main_thread() and not thread.name.startswith("asyncio"):
            thread.join()
    me = str(os.getpid())
    subprocess.run(["callgrind_control", "-z", me], check=True, stdout=subprocess.DEVNULL)
    statuses.clear()
    for _ in range(burst):
        await app(dict(SCOPE), receive, send)
    assert statuses.count(200) == burst, "a request was answered other than 200"
    subprocess.run(["callgrind_control", "-d", me], check=True, stdout=subprocess.DEVNULL)
'''


def checkout(spec: str) -> tuple[Path, dict[str, str]]:
    """``path@@NAME=value@@...`` -> (path, environment)."""
    path, *settings = spec.split("@@")
    return Path(path).resolve(), {**os.environ, **dict(s.split("=", 1) for s in settings)}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", nargs="+", help="the first is the reference")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--burst", type=int, default=500, help="requests per burst")
    parser.add_argument("--cpu", default="1", help="the CPU every process is pinned to")
    parser.add_argument("--body", type=Path, help="a file with the request body (default: "
                        "one iris row)")
    parser.add_argument("--route", default="/")
    parser.add_argument("--query", default="", help="e.g. format=columns")
    parser.add_argument("--model", default="", help="MODEL_PATH (default: models/iris.onnx)")
    parser.add_argument("--instructions", type=int, default=0, metavar="N",
                        help="count the instructions of N requests under callgrind instead")
    args = parser.parse_args(argv)
    if args.body is None:
        args.body = Path(tempfile.mkdtemp(prefix="inprocess-ab-")) / "body.json"
        args.body.write_text(json.dumps({"instances": [SETOSA]}))
    if args.instructions:
        return instructions(args)
    kids = []
    for spec in args.checkouts:
        path, env = checkout(spec)
        kids.append(subprocess.Popen(
            ["taskset", "-c", args.cpu, sys.executable, "-c", TIMED + CHILD, str(path),
             str(args.burst), str(args.body.resolve()), args.route, args.model, args.query],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            stderr=subprocess.DEVNULL, start_new_session=True))
    try:
        for kid in kids:
            if kid.stdout.readline().strip() != "ready":  # type: ignore[union-attr]
                raise SystemExit("a checkout did not come up (run it alone to see why)")
        times: list[list[float]] = [[] for _ in kids]
        for round_ in range(args.rounds):
            for i in (range(len(kids)) if round_ % 2 == 0 else reversed(range(len(kids)))):
                kids[i].stdin.write("go\n")  # type: ignore[union-attr]
                kids[i].stdin.flush()  # type: ignore[union-attr]
                value = float(kids[i].stdout.readline())  # type: ignore[union-attr]
                if value < 0:
                    raise SystemExit(f"{args.checkouts[i]} answered other than 200")
                times[i].append(value)
    finally:
        for kid in kids:
            kid.stdin.close()  # type: ignore[union-attr]
            kid.wait(30)
    report = {}
    for spec, spent in zip(args.checkouts, times):
        ratios = [a / b for a, b in zip(spent, times[0])]
        report[spec] = {"us_per_request": statistics.median(spent),
                        "ratio": statistics.median(ratios),
                        "ratio_q25": statistics.quantiles(ratios, n=4)[0],
                        "ratio_q75": statistics.quantiles(ratios, n=4)[2]}
        print(f"{spec}: {report[spec]['us_per_request']:.1f} us/request, "
              f"{report[spec]['ratio']:.3f}x the first (quartiles {report[spec]['ratio_q25']:.3f}"
              f"-{report[spec]['ratio_q75']:.3f})")
    return report


def instructions(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """``--instructions``: instructions per request of each checkout, two at a time."""
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    folder = Path(tempfile.mkdtemp(prefix="inprocess-ab-cg-"))
    counts: list[float] = []
    for first in range(0, len(args.checkouts), 2):
        kids = []
        for i in range(first, min(first + 2, len(args.checkouts))):
            path, env = checkout(args.checkouts[i])
            kids.append(subprocess.Popen(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/{i}",
                 sys.executable, "-c", COUNTED + CHILD, str(path), str(args.instructions),
                 str(args.body.resolve()), args.route, args.model, args.query],
                env={**env, "PYTHONHASHSEED": "0"}, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        for i, kid in enumerate(kids, start=first):
            if kid.wait():
                raise SystemExit(f"{args.checkouts[i]} failed under callgrind (run it alone)")
            dump = next(folder.glob(f"{i}.*"))  # the one dump the child asked for
            found = re.search(r"^summary: (\d+)$", dump.read_text(), re.M)
            counts.append(int(found.group(1)) / args.instructions)  # type: ignore[union-attr]
    shutil.rmtree(folder)
    report = {}
    for spec, count in zip(args.checkouts, counts):
        report[spec] = {"instructions_per_request": count, "ratio": count / counts[0]}
        print(f"{spec}: {count:,.0f} instructions/request, {count / counts[0]:.3f}x the first")
    return report


if __name__ == "__main__":
    main()
