"""The model fetched ahead while gunicorn's arbiter imports (functions/loading/early_fetch.py).

Real processes: a script stands in for the arbiter (functions-framework's command line
imported, then main.py, then a fork as gunicorn makes it), against a local model host
that counts its GETs. What the arbiter holds is recorded by an at-fork hook that runs
after the holder's fork guard, at the fork itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_CARD, DEMO_MODEL
from tests.servers import ROOT, start_file_server

ARBITER = """
import json, os, sys, threading
from pathlib import Path
import functions_framework._cli  # as when functions-framework's command line imports main.py
seen = {}

def link(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # the descriptor listdir itself had open
        return ""

def at_fork():  # registered first, so it runs last: after the holder's fork guard
    me = os.getpid()
    fds = [link(fd) for fd in os.listdir("/proc/self/fd") if int(fd) > 2]
    seen.update(threads=sorted(t.name for t in threading.enumerate()),
                pipes=[f for f in fds if f.startswith("pipe:")],
                sockets=[f for f in fds if f.startswith("socket:")],
                children=open(f"/proc/{me}/task/{me}/children").read().split(),
                cached=sorted(p.name for p in Path(os.environ["MODEL_CACHE_DIR"]).glob("*.onnx")),
                worker_modules="uvicorn.protocols.http.auto" in sys.modules)

def read_ahead():  # the tokenizers parsed before the fork: where each object lives
    from functions.codecs import tokens
    return {p.name: id(t) for p, t in tokens._READ_AHEAD.items()}

os.register_at_fork(before=lambda: seen.update(read_ahead=read_ahead()))
os.register_at_fork(before=at_fork)
from functions.loading import early_fetch
early_fetch.HOLD_SECONDS = float(os.environ["HOLD"])
import main
holder = main._rt.holder
report = Path(os.environ["MODEL_CACHE_DIR"]).parent / "worker.json"
pid = os.fork()  # gunicorn's worker
if pid == 0:
    holder._done.wait(60)
    model = holder.model
    plan = main._rt.service.plan(model) if model is not None else None
    encoder = getattr(plan, "encoder", None)  # a text model's: the tokenizer it feeds from
    report.write_text(json.dumps(id(encoder.tokenizer) if encoder else None))
    os._exit(0 if model is not None else 1)
_, status = os.waitpid(pid, 0)
used = json.loads(report.read_text()) if report.exists() else None
print(json.dumps({**seen, "worker_ready": os.waitstatus_to_exitcode(status) == 0,
                  "worker_tokenizer": used}))
"""


def _arbiter(model_uri: str, hold: float, tmp: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", ARBITER], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=False,
                         env={"PATH": "/usr/bin:/bin", "MODEL_URI": model_uri,
                              "MODEL_CACHE_DIR": str(tmp / "cache"), "HOLD": str(hold)})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def host(tmp_path: Path):
    root = tmp_path / "host"
    root.mkdir()
    shutil.copy(DEMO_MODEL, root / "iris.onnx")
    shutil.copy(DEMO_CARD, root / "iris.card.json")
    server, url = start_file_server(root)
    yield server, url
    server.shutdown()


def test_the_fork_waits_for_the_fetch_ahead_and_the_worker_only_builds(host, tmp_path) -> None:
    server, url = host
    seen = _arbiter(f"{url}/iris.onnx", 30.0, tmp_path)
    # at the fork: the helper ended and was reaped, its pipe closed, no connection open,
    # no thread but the holder's, waiting for the fork
    assert seen["children"] == [] and seen["pipes"] == [] and seen["sockets"] == [], seen
    assert seen["threads"] == ["MainThread", "model-load"], seen
    assert seen["cached"] == [f"{json.loads(DEMO_CARD.read_text())['sha256']}.onnx"], seen
    assert seen["worker_modules"]  # what the worker imports first, imported before the fork
    assert seen["worker_ready"]
    # the helper read the card and the model; the worker used its verified download
    assert server.hits == {"/iris.card.json": 1, "/iris.onnx": 1}


def test_a_download_longer_than_the_hold_goes_on_and_the_worker_waits_for_it(
        host, tmp_path) -> None:
    server, url = host
    server.delay = 2.5  # every answer: the helper's card and model take 5 s, far longer
    # than the hold (0.3 s) and than the arbiter's imports on a busy machine
    seen = _arbiter(f"{url}/iris.onnx", 0.3, tmp_path)
    # the fork did not wait: the helper was still downloading, on its own; nothing of it
    # in the arbiter (its pipe closed)
    assert len(seen["children"]) == 1 and seen["pipes"] == [] and seen["sockets"] == [], seen
    assert seen["cached"] == [] and seen["worker_modules"], seen
    assert seen["worker_ready"]
    # the worker read the card itself, then found the helper's download on the cache lock
    assert server.hits == {"/iris.card.json": 2, "/iris.onnx": 1}


def test_a_failed_fetch_ahead_leaves_the_load_to_the_worker(host, tmp_path) -> None:
    server, url = host
    seen = _arbiter(f"{url}/missing.onnx", 30.0, tmp_path)
    assert seen["children"] == [] and seen["pipes"] == [], seen
    assert not seen["worker_ready"]  # the worker tried again itself (and says why)
    assert server.hits == {"/missing.card.json": 2}


def test_a_local_model_forks_no_helper_and_the_arbiter_imports_as_before(tmp_path) -> None:
    seen = _arbiter(str(DEMO_MODEL), 30.0, tmp_path)
    assert seen["children"] == [] and seen["pipes"] == [], seen
    assert not seen["worker_modules"] and seen["cached"] == [], seen  # the worker loads
    assert seen["worker_ready"]


def test_a_text_models_tokenizer_is_parsed_by_the_arbiter_while_the_model_downloads(
        built_model, tmp_path) -> None:
    path, _ = built_model("bert")
    root = tmp_path / "host"
    root.mkdir()
    for file in (path, path.with_suffix(".card.json"), path.parent / "tokenizer.json"):
        shutil.copy(file, root / file.name)
    size = path.stat().st_size
    server, url = start_file_server(root, rate=size / 1.5)  # the model: ~1.5 s a download
    try:
        seen = _arbiter(f"{url}/{path.name}", 30.0, tmp_path)
    finally:
        server.shutdown()
    assert seen["children"] == [] and seen["pipes"] == [] and seen["threads"] == [
        "MainThread", "model-load"], seen  # the helper's thread for the tokenizer ended too
    sha = json.loads(path.with_suffix(".card.json").read_text())["sha256"]
    parsed = seen["read_ahead"]
    assert list(parsed) == [f"{sha}.tokenizer.json"], seen  # parsed before the fork
    assert seen["worker_ready"]
    # the worker's encoder feeds from the object the arbiter parsed: it was not read again
    assert seen["worker_tokenizer"] == parsed[f"{sha}.tokenizer.json"]
    assert server.hits == {f"/{path.stem}.card.json": 1, f"/{path.name}": 1,
                           "/tokenizer.json": 1}
