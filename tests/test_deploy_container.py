"""The containers' install and start steps, without a Docker engine (none here).

- deploy/Dockerfile: its COPY and RUN pip install steps replayed into a fresh venv (on
  Python 3.12, the image's, where this machine has it), then its CMD started with PORT set:
  the same main.py answers /readyz 200 and a prediction.
- deploy/Dockerfile.gpu and Dockerfile.lambda: their pip installs resolved for the images'
  Python 3.12 on Linux (pip --dry-run: every pin exists and nothing conflicts).
- Provider selection: EXECUTION_PROVIDERS=gpu where only CPUExecutionProvider exists keeps
  /readyz at 503 with a message naming CUDAExecutionProvider; /healthz stays 200.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

from tests.deploy_fixtures.dockerfile import copy_sources, parse
from tests.deploy_fixtures.dry_run import DEPLOY, ROOT
from tests.servers import Served, free_port, wait_http

IMAGE_PYTHON = ["--python-version", "3.12", "--only-binary=:all:"] + [
    arg
    for tag in ("manylinux_2_28", "manylinux_2_27", "manylinux_2_17", "manylinux2014")
    for arg in ("--platform", f"{tag}_x86_64")
]


def image_python() -> str | None:
    """A Python 3.12 interpreter on this machine, the version the images and GCF run."""
    for candidate in ("python3.12", "/root/.pyenv/versions/3.12.1/bin/python3.12"):
        found = shutil.which(candidate)
        if found:
            out = subprocess.run([found, "-c", "import sys; print(sys.version_info[:2])"],
                                 capture_output=True, text=True, check=False)
            if out.returncode == 0 and out.stdout.strip() == "(3, 12)":
                return found
    return None


def test_dockerfile_installs_and_serves_readyz(tmp_path: Path) -> None:
    dockerfile = parse(DEPLOY / "Dockerfile")
    assert dockerfile.base == "python:3.12-slim" and dockerfile.workdir == "/app"
    app, venv = tmp_path / "app", tmp_path / "venv"
    copy_sources(dockerfile, ROOT, app)
    # The image's Python when this machine has it (pyenv ships 3.12 here), else ours.
    python = image_python() or sys.executable
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    env = {
        **os.environ,
        **dockerfile.env,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("VIRTUAL_ENV", None)
    (install,) = [run for run in dockerfile.runs if "pip install" in run]
    # The same install; pip's cache kept (the image build drops it to stay small).
    subprocess.run(
        install.replace("--no-cache-dir", ""),
        shell=True,
        cwd=app,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )

    port = free_port()
    env.update(PORT=str(port), MODEL_CACHE_DIR=str(tmp_path / "model-cache"))
    log = tmp_path / "container.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            dockerfile.cmd, cwd=app, env=env, stdout=out, stderr=subprocess.STDOUT
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
        proc.terminate()
        proc.wait(10)


def _resolve(tmp_path: Path, *requirements: Path) -> str:
    """pip's dry-run resolution of ``requirements`` for the image (Python 3.12, Linux x86_64)."""
    args = [arg for req in requirements for arg in ("-r", str(req))]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--target",
            str(tmp_path / "target"),
            *IMAGE_PYTHON,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_gpu_image_requirements_resolve_with_onnxruntime_gpu_only(tmp_path: Path) -> None:
    (install,) = [run for run in parse(DEPLOY / "Dockerfile.gpu").runs if "pip install" in run]
    # The Dockerfile's own filter: requirements.txt without its onnxruntime pin.
    pattern = re.search(r"grep -v '([^']+)' requirements.txt", install).group(1)
    base = tmp_path / "requirements-base.txt"
    base.write_text(
        "".join(
            line
            for line in (ROOT / "requirements.txt").read_text().splitlines(True)
            if not re.search(pattern, line)
        )
    )
    resolved = _resolve(tmp_path, base, ROOT / "requirements-gpu.txt")
    assert "onnxruntime-gpu-1.26.0" in resolved
    assert not re.search(r"\bonnxruntime-1\.", resolved)


def test_lambda_image_requirements_resolve(tmp_path: Path) -> None:
    (install,) = [run for run in parse(DEPLOY / "Dockerfile.lambda").runs if "pip install" in run]
    assert "-r requirements-aws.txt" in install
    resolved = _resolve(tmp_path, ROOT / "requirements-aws.txt")
    assert "mangum-0.22.0" in resolved and "onnxruntime-1." in resolved


def _readyz_failure(served: Served, timeout: float = 60) -> requests.Response:
    """/readyz once the model load has failed (not merely still loading)."""
    deadline = time.monotonic() + timeout
    while True:
        resp = served.get("/readyz")
        if "ExecutionProvider" in resp.text or time.monotonic() > deadline:
            return resp
        time.sleep(0.1)


def test_gpu_required_without_cuda_refuses_readiness(serve: Callable[..., Served]) -> None:
    served = serve({"EXECUTION_PROVIDERS": "gpu"}, wait="/healthz")
    resp = _readyz_failure(served)
    assert resp.status_code == 503
    assert "CUDAExecutionProvider" in resp.text
    assert served.get("/healthz").status_code == 200
