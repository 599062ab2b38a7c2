"""The containers' install and start steps, without a Docker engine (none here).

- deploy/Dockerfile: its COPY and RUN pip install steps replayed into a venv (on Python
  3.12, the image's, where this machine has it; the install layer is cached as Docker caches
  it, and built by `make image-layers` before the suite: tests/deploy_fixtures/image_layers.py),
  then its CMD started with PORT set, over a socket (the process is the subject): the same
  main.py answers /readyz 200 and a prediction.
- deploy/Dockerfile.gpu and Dockerfile.lambda: their pip installs resolved for the images'
  Python 3.12 on Linux (pip --dry-run: every pin exists and nothing conflicts; cached by
  the same key, and resolved by `make image-layers` before the suite).
- Provider selection (in process): EXECUTION_PROVIDERS=gpu where only CPUExecutionProvider
  exists keeps /readyz at 503 with a message naming CUDAExecutionProvider; /healthz stays 200.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tests.deploy_fixtures.dockerfile import copy_sources, parse
from tests.deploy_fixtures.dry_run import DEPLOY, ROOT
from tests.deploy_fixtures.image_layers import gpu_requirements, image_venv, resolved
from tests.inprocess import InProcess
from tests.servers import free_port, stop_group, wait_http


def test_dockerfile_installs_and_serves_readyz(tmp_path: Path) -> None:
    dockerfile = parse(DEPLOY / "Dockerfile")
    assert dockerfile.base == "python:3.12-slim" and dockerfile.workdir == "/app"
    app = tmp_path / "app"
    copy_sources(dockerfile, ROOT, app)
    venv = image_venv(dockerfile)  # the install layer, cached as Docker caches it
    env = {
        **os.environ,
        **dockerfile.env,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("VIRTUAL_ENV", None)

    port = free_port()
    env.update(PORT=str(port), MODEL_CACHE_DIR=str(tmp_path / "model-cache"))
    log = tmp_path / "container.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            dockerfile.cmd, cwd=app, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # the shell, the arbiter and its worker stop together
        )
    try:
        ready = wait_http(f"http://127.0.0.1:{port}/readyz", timeout=90, proc=proc)
        assert ready.status_code == 200
        # Served by the fresh venv's functions-framework, not this test's.
        assert str(venv) in Path(f"/proc/{proc.pid}/cmdline").read_text()
        # a real prediction, on the venv's Python (3.12 where available)
        resp = requests.post(f"http://127.0.0.1:{port}/predict", timeout=30,
                             json={"instances": [[5.1, 3.5, 1.4, 0.2]]})
        assert resp.status_code == 200 and resp.json()["predictions"][0]["label"] == "setosa"
    except Exception as exc:
        raise AssertionError(f"{exc}\n--- container log ---\n{log.read_text()}") from exc
    finally:
        stop_group(proc)


def test_gpu_image_requirements_resolve_with_onnxruntime_gpu_only(tmp_path: Path) -> None:
    got = resolved(*gpu_requirements(tmp_path))
    assert "onnxruntime-gpu-1.26.0" in got
    assert not re.search(r"\bonnxruntime-1\.", got)


def test_lambda_image_requirements_resolve() -> None:
    (install,) = [run for run in parse(DEPLOY / "Dockerfile.lambda").runs if "pip install" in run]
    assert "-r requirements-aws.txt" in install
    got = resolved(ROOT / "requirements-aws.txt")
    assert "mangum-0.22.0" in got and "onnxruntime-1." in got


def _readyz_failure(served: InProcess, timeout: float = 60) -> Any:
    """/readyz once the model load has failed (not merely still loading)."""
    deadline = time.monotonic() + timeout
    while True:
        resp = served.get("/readyz")
        if "ExecutionProvider" in resp.text or time.monotonic() > deadline:
            return resp
        time.sleep(0.1)


def test_gpu_required_without_cuda_refuses_readiness(app: Callable[..., InProcess]) -> None:
    served = app({"EXECUTION_PROVIDERS": "gpu"}, wait="/healthz")
    resp = _readyz_failure(served)
    assert resp.status_code == 503
    assert "CUDAExecutionProvider" in resp.text
    assert served.get("/healthz").status_code == 200
