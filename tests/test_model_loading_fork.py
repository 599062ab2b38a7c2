"""What a forked worker inherits from the arbiter's model load cannot block it (issue 11).

Real forks of real processes: a cache lock held in the parent, an import the load makes
outside the fork guard, a fork from an already forked child.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from functions.loading.cache_lock import cache_lock
from tests.conftest import DEMO_CARD, DEMO_MODEL
from tests.servers import ROOT, start_file_server


def _wait_child(pid: int, bound: float = 20.0) -> int | str:
    """The child's exit status, or "hung" after ``bound`` seconds (a hang, not a speed)."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return "hung"


def test_a_child_forked_while_the_parent_holds_the_cache_lock_gets_it_once_released(
        tmp_path: Path) -> None:
    lock = tmp_path / "m.lock"
    held, release = threading.Event(), threading.Event()

    def holder() -> None:  # the arbiter's load thread, mid-download
        with cache_lock(lock, 0) as locked:
            assert locked
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(10)
    tried_r, tried_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: busy while the parent holds it, then its own
        with cache_lock(lock, 0) as busy:
            pass
        os.write(tried_w, b"1")  # the parent releases only after this try, however slow
        with cache_lock(lock, 15) as mine:
            os._exit(0 if (not busy and mine) else 1)
    os.close(tried_w)
    try:
        assert os.read(tried_r, 1) == b"1"  # the child tried while the lock was held
    finally:
        os.close(tried_r)
        release.set()
        thread.join()
    assert _wait_child(pid) == 0


def test_the_lock_wait_is_bounded(tmp_path: Path) -> None:
    with cache_lock(tmp_path / "m.lock", 0) as first:
        pid = os.fork()
        if pid == 0:
            with cache_lock(tmp_path / "m.lock", 0.2) as second:
                os._exit(0 if not second else 1)
        assert first and _wait_child(pid) == 0


FETCH = """
import os, sys
from functions.loading.artifacts import fetch_model
from functions.loading.pointer import resolve_model_uris
from functions.loading.stores import Stores
from functions.config.settings import Settings

settings = Settings.from_env()
stores = Stores()
for uri in {settings.model_uri, settings.card_uri()}:
    stores.for_uri(uri)  # what the holder does under its fork guard
before = set(sys.modules)
fetch_model(settings, stores, *resolve_model_uris(settings, stores))
print(sorted(set(sys.modules) - before))
"""


def _fetch_imports(env: dict[str, str], tmp: Path) -> str:
    out = subprocess.run([sys.executable, "-c", FETCH], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=False,
                         env={"PATH": "/usr/bin:/bin", "MODEL_CACHE_DIR": str(tmp / "cache"),
                              **env})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize("scheme", ["file", "http"])
def test_the_fetch_imports_nothing_outside_the_fork_guard(scheme: str, tmp_path: Path) -> None:
    """A fork while the load thread imports leaves that module's lock held in the worker,
    whose own load then waits on it: the stores import what they need up front."""
    root = tmp_path / "host"
    root.mkdir()
    shutil.copy(DEMO_MODEL, root / "iris.onnx")
    shutil.copy(DEMO_CARD, root / "iris.card.json")
    if scheme == "file":
        assert _fetch_imports({"MODEL_URI": str(root / "iris.onnx")}, tmp_path) == "[]"
        return
    server, url = start_file_server(root)
    try:
        assert _fetch_imports({"MODEL_URI": f"{url}/iris.onnx"}, tmp_path) == "[]"
    finally:
        server.shutdown()


def test_the_fetch_from_cloud_stores_imports_nothing_outside_the_fork_guard(
        tmp_path: Path, gcs_env, gcs_bucket, s3_env) -> None:
    import boto3

    gcs_bucket.blob("iris/model.onnx").upload_from_filename(str(DEMO_MODEL))
    gcs_bucket.blob("iris/model.card.json").upload_from_filename(str(DEMO_CARD))
    gs = {**gcs_env, "MODEL_URI": f"gs://{gcs_bucket.name}/iris/model.onnx"}
    assert _fetch_imports(gs, tmp_path / "gs") == "[]"
    s3 = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    s3.create_bucket(Bucket="fork-imports")
    s3.upload_file(str(DEMO_MODEL), "fork-imports", "iris/model.onnx")
    s3.upload_file(str(DEMO_CARD), "fork-imports", "iris/model.card.json")
    assert _fetch_imports({**s3_env, "MODEL_URI": "s3://fork-imports/iris/model.onnx"},
                          tmp_path / "s3") == "[]"


TWICE = """
import os, sys, time
import main
main._rt.holder._done.wait(30)
pid = os.fork()
if pid == 0:  # a worker that forks again (multiprocessing with fork, say)
    main._rt.holder._done.wait(30)
    grandchild = os.fork()
    if grandchild == 0:
        os._exit(0)
    os.waitpid(grandchild, 0)
    sys.exit(0)
deadline = time.monotonic() + 30  # a hang, not a speed limit
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        print(os.waitstatus_to_exitcode(status))
        break
    time.sleep(0.05)
else:
    os.kill(pid, 9)
    print("hung")
"""


def test_a_forked_worker_can_fork_again(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", TWICE], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=False,
                         env={"MODEL_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip().splitlines()[-1:] == ["0"], out.stderr
