"""The images' pip steps without Docker, cached the way Docker caches a layer (keyed by the
command and the requirements files it reads):

- ``image_venv()``: deploy/Dockerfile's install layer replayed into a venv;
- ``resolved(files)``: pip's dry-run resolution of requirements files for the images'
  Python 3.12 on Linux x86_64 (every pin exists and nothing conflicts), as pip printed it.

``make image-layers`` (run by ``make test``) builds both before the suite with ``python -m
tests.deploy_fixtures.image_layers``; a test that finds one missing builds it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.deploy_fixtures.dockerfile import Dockerfile, copy_sources, parse
from tests.deploy_fixtures.dry_run import DEPLOY, ROOT

CACHE = ROOT / ".cache" / "image-layers"
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


def install_step(dockerfile: Dockerfile) -> str:
    """The Dockerfile's one ``RUN pip install``, with pip's cache kept (the image build
    drops it to stay small)."""
    (install,) = [run for run in dockerfile.runs if "pip install" in run]
    return install.replace("--no-cache-dir", "")


def image_venv(dockerfile: Dockerfile | None = None) -> Path:
    """The venv of the install layer (built on first use): the image's Python when this
    machine has it (pyenv ships 3.12 here), else ours."""
    dockerfile = dockerfile or parse(DEPLOY / "Dockerfile")
    python = image_python() or sys.executable
    install = install_step(dockerfile)
    key = hashlib.sha256(f"{python}\n{install}\n{dockerfile.env}".encode())
    for name in re.findall(r"-r\s+(\S+)", install):
        key.update((ROOT / name).read_bytes())
    venv = CACHE / f"venv-{key.hexdigest()[:16]}" / "venv"
    if (venv / ".installed").exists():
        return venv
    shutil.rmtree(venv.parent, ignore_errors=True)
    venv.parent.mkdir(parents=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, **dockerfile.env,
           "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    with tempfile.TemporaryDirectory() as app:
        copy_sources(dockerfile, ROOT, Path(app))
        subprocess.run(install, shell=True, cwd=app, env=env, check=True,
                       capture_output=True, timeout=600)
    (venv / ".installed").touch()
    return venv


def resolved(*requirements: Path) -> str:
    """pip's dry-run resolution of ``requirements`` for the images (its report of what it
    would install); AssertionError with pip's message where it fails (never cached)."""
    key = hashlib.sha256(" ".join(IMAGE_PYTHON).encode())
    for req in requirements:
        key.update(b"\0" + req.read_bytes())
    cached = CACHE / f"resolve-{key.hexdigest()[:16]}.txt"
    if cached.exists():
        return cached.read_text()
    args = [arg for req in requirements for arg in ("-r", str(req))]
    with tempfile.TemporaryDirectory() as target:
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run",
                               "--ignore-installed", "--target", target, *IMAGE_PYTHON, *args],
                              capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(proc.stdout)
    return proc.stdout


def gpu_requirements(folder: Path) -> list[Path]:
    """What deploy/Dockerfile.gpu installs: requirements.txt through the Dockerfile's own
    filter (its onnxruntime pin left out, written into ``folder``), and requirements-gpu.txt."""
    (install,) = [run for run in parse(DEPLOY / "Dockerfile.gpu").runs if "pip install" in run]
    pattern = re.search(r"grep -v '([^']+)' requirements.txt", install).group(1)
    base = folder / "requirements-base.txt"
    base.write_text("".join(line for line in (ROOT / "requirements.txt").read_text()
                            .splitlines(True) if not re.search(pattern, line)))
    return [base, ROOT / "requirements-gpu.txt"]


if __name__ == "__main__":
    print(image_venv())
    with tempfile.TemporaryDirectory() as folder:
        resolved(*gpu_requirements(Path(folder)))
    resolved(ROOT / "requirements-aws.txt")
