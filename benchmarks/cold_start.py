"""Cold start measured from outside: process spawn -> first 200 of ``POST /predict``.

    .venv/bin/python -m benchmarks.cold_start [--runs 21] [--base /tmp/base]

Every start is a fresh functions-framework process (production server, defaults) with a
fresh model cache, the contenders taken in turn (ABBA) so drift on a shared machine hits
all alike. Contenders: this function; the tuned 20-line handler (benchmarks/tuned_handler.py,
the same model and onnxruntime, orjson, uvloop and httptools); with ``--base``, an earlier
checkout of this function. Each is started twice per round: with its bytecode compiled
beforehand (as container images are built) and with no bytecode at all (every module
compiled at start, as a source deploy's first start or a read-only checkout with
PYTHONDONTWRITEBYTECODE does). The figure of each is the median over ``--runs`` starts, the
ratio the median of per-round ratios against the tuned handler in the same condition.
Writes benchmarks/results/cold_start.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.harness import FF, ROOT, SETOSA, first_200, free_port, median, save, stop

TUNED = ROOT / "benchmarks" / "tuned_handler.py"


def start(source: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([FF, "--target", "predict", "--source", str(source), "--asgi",
                             "--host", "127.0.0.1", "--port", str(port)], cwd=source.parent,
                            env={**os.environ, "PORT": str(port), **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def bytecode(source: Path, compiled: bool) -> dict[str, str]:
    """Compile the modules ``source`` serves (the file, and ``functions/`` beside it), or
    remove their bytecode and keep the start from writing any (the environment for it)."""
    tree = source.parent
    paths = [source.name] + (["functions"] if (tree / "functions").is_dir() else [])
    for path in paths:
        for cache in [tree / "__pycache__", *(tree / path).rglob("__pycache__")]:
            shutil.rmtree(cache, ignore_errors=True)
    if compiled:
        subprocess.run([str(Path(FF).parent / "python"), "-m", "compileall", "-q", *paths],
                       cwd=tree, check=True, stdout=subprocess.DEVNULL)
        return {}
    return {"PYTHONDONTWRITEBYTECODE": "1"}


def one_start(source: Path, env: dict[str, str]) -> float:
    body = json.dumps({"instances": [SETOSA]}).encode()
    cache = tempfile.mkdtemp(prefix="cold-cache-")
    t0 = time.perf_counter()
    proc, url = start(source, {**env, "MODEL_CACHE_DIR": cache})
    try:
        first_200(url + ("/predict" if source.name == "main.py" else "/"), body, proc)
        return time.perf_counter() - t0
    finally:
        stop(proc)
        shutil.rmtree(cache, ignore_errors=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--base", type=Path, help="an earlier checkout of this function")
    args = parser.parse_args(argv)
    model = {"MODEL_PATH": str(ROOT / "models" / "iris.onnx")}
    contenders = {"this": (ROOT / "main.py", {}), "tuned": (TUNED, model)}
    if args.base:
        contenders["base"] = (args.base.resolve() / "main.py", {})
    times = {f"{name} {cond}": [] for name in contenders for cond in ("compiled", "source")}
    for round_ in range(args.runs):
        order = list(contenders.items())
        for name, (source, env) in order[::-1] if round_ % 2 else order:
            for cond in ("compiled", "source"):
                extra = bytecode(source, cond == "compiled")
                times[f"{name} {cond}"].append(one_start(source, {**env, **extra}))
    bytecode(ROOT / "main.py", True)  # leave the checkout compiled, as it was
    result: dict = {"runs": args.runs, "seconds": times,
                    "median_s": {k: round(median(v), 4) for k, v in times.items()}}
    ratios = {}
    for name in contenders:
        for cond in ("compiled", "source"):
            pairs = zip(times[f"{name} {cond}"], times[f"tuned {cond}"])
            ratios[f"{name} {cond}"] = round(median([a / b for a, b in pairs]), 3)
    result["ratio_vs_tuned"] = ratios
    for key, value in result["median_s"].items():
        print(f"{key:16s} {value * 1e3:7.1f} ms  {ratios[key]:.3f}x tuned")
    save("cold_start", result)
    return result


if __name__ == "__main__":
    main()
