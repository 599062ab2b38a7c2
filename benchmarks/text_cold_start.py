"""A text model's cold start from gs://, broken down: spawn -> first 200 of ``POST /predict``.

    .venv/bin/python -m benchmarks.text_cold_start [--runs 5] [--infinity] [--no-packed]

all-MiniLM-L6-v2 (the embedding benchmark's ``model_export hf`` export, packed, ~90 MB) with its
card and tokenizer sits in a bucket of gcp-storage-emulator (its own process, in memory).
Each round takes, in turn:

- ``served``: the production server (functions-framework, defaults), MODEL_URI=gs://...,
  a fresh model cache, from spawn to its first 200 of POST /predict with one sentence;
- ``parts``: benchmarks/text_cold_parts.py in a fresh process, every part of the same
  start one after another (interpreter, imports, card, download, sha256, tokenizer fetch,
  session build, tokenizer, warm-up);
- with ``--base``, an earlier checkout served the same way (before and after ours in
  turn), and its own parts (its text_cold_parts, its code), so it is set against its
  own floor as well as this one's;
- with ``--infinity``, infinity-emb's spawn to its first 200 of POST /embeddings (its
  optimum export, on local disk: it cannot read gs://).

The floor is the parts' critical path once what the issue allows to overlap is hidden:
the sum of the parts less sha256 (overlapped with the download) and the tokenizer
(overlapped with the session build). Medians over rounds; writes
benchmarks/results/text_cold_start.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.cold_start import start
from benchmarks.harness import ROOT, first_200, free_port, median, save, stop

HIDDEN = ("sha256", "tokenizer")
"""The parts the load overlaps with others (the download, the session build)."""


def emulator() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "gcp-storage-emulator"),
                             "start", "--host", "127.0.0.1", "--port", str(port), "-M", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    host = f"http://127.0.0.1:{port}"
    import requests

    for _ in range(200):
        try:
            requests.get(host + "/storage/v1/b", timeout=1)
            return proc, host
        except requests.ConnectionError:
            time.sleep(0.05)
    stop(proc)
    raise RuntimeError("gcp-storage-emulator did not start")


def upload(host: str, model: Path) -> str:
    """The model, its card and tokenizer in gs://models/minilm/1/; the model's URI."""
    os.environ["STORAGE_EMULATOR_HOST"] = host
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="bench", credentials=AnonymousCredentials())
    bucket = client.create_bucket("models")
    for path in (model, model.with_suffix(".card.json"), model.with_suffix(".tokenizer.json")):
        bucket.blob(f"minilm/1/{path.name}").upload_from_filename(str(path))
    return f"gs://models/minilm/1/{model.name}"


def served(env: dict[str, str], source: Path = ROOT / "main.py") -> float:
    cache = tempfile.mkdtemp(prefix="text-cold-")
    t0 = time.perf_counter()
    proc, url = start(source, {**env, "MODEL_CACHE_DIR": cache})
    try:
        first_200(url + "/predict", json.dumps({"instances": ["A first sentence."]}).encode(),
                  proc, timeout=120)
        return time.perf_counter() - t0
    finally:
        stop(proc)
        shutil.rmtree(cache, ignore_errors=True)


def parts(env: dict[str, str], model_uri: str, root: Path = ROOT) -> dict[str, float]:
    """The serial parts of the checkout at ``root`` (its own text_cold_parts)."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.text_cold_parts", model_uri],
                         env={**os.environ, **env, "SPAWNED_AT": repr(time.time())},
                         cwd=root, capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def floor(part: dict[str, float]) -> float:
    """The serial parts' sum less what the load overlaps (HIDDEN)."""
    return sum(v for n, v in part.items() if n not in HIDDEN)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--infinity", action="store_true")
    parser.add_argument("--base", type=Path, help="an earlier checkout, served in turn")
    parser.add_argument("--packed", action=argparse.BooleanOptionalAction, default=True,
                        help="the packed export (model_export hf's default for BERT); "
                        "--no-packed: the padded one")
    args = parser.parse_args(argv)
    from benchmarks.embedding_bench import exported

    model = exported(False, packed=args.packed)
    for tree in (ROOT, args.base) if args.base else (ROOT,):  # as the images are built:
        subprocess.run([sys.executable, "-m", "compileall", "-q", "main.py", "functions",
                        "benchmarks"], cwd=tree, check=True)  # each start finds bytecode
    proc, host = emulator()
    times: dict[str, list] = {"served": [], "parts": [], "infinity": [], "base": [],
                              "base_parts": []}
    try:
        uri = upload(host, model)
        env = {"STORAGE_EMULATOR_HOST": host, "GOOGLE_CLOUD_PROJECT": "bench",
               "MODEL_URI": uri}
        for run in range(args.runs):
            if args.base and run % 2:  # ABBA
                times["base"].append(served(env, args.base.resolve() / "main.py"))
            times["served"].append(served(env))
            if args.base and not run % 2:
                times["base"].append(served(env, args.base.resolve() / "main.py"))
            times["parts"].append(parts(env, uri))
            if args.base:
                times["base_parts"].append(parts(env, uri, args.base.resolve()))
            if args.infinity:
                from benchmarks import infinity_peer

                peer, _, ready = infinity_peer.start()
                stop(peer)
                times["infinity"].append(ready)
    finally:
        stop(proc)
    names = list(times["parts"][0])
    breakdown = {n: median([p[n] for p in times["parts"]]) for n in names}
    floors = [floor(p) for p in times["parts"]]
    base_floors = [floor(p) for p in times["base_parts"]]
    result = {"served_s": median(times["served"]), "breakdown_s": breakdown,
              "serial_s": median([sum(p.values()) for p in times["parts"]]),
              "floor_s": median(floors),
              "served_vs_floor": median([s / f for s, f in zip(times["served"], floors)]),
              "infinity_ready_s": median(times["infinity"]) if times["infinity"] else None,
              "base_s": median(times["base"]) if times["base"] else None,
              "runs": times, "load_average": os.getloadavg()}
    if args.base:  # the earlier checkout against its own floor, and against this one's
        result |= {"base_floor_s": median(base_floors),
                   "base_breakdown_s": {n: median([p[n] for p in times["base_parts"]])
                                        for n in names},
                   "base_vs_its_floor": median([b / f for b, f in zip(times["base"],
                                                                     base_floors)]),
                   "base_vs_floor": median([b / f for b, f in zip(times["base"], floors)]),
                   "served_vs_base": median([s / b for s, b in zip(times["served"],
                                                                  times["base"])])}
    save("text_cold_start", result)
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))
    return result


if __name__ == "__main__":
    main()
