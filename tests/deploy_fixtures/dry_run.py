"""Run a deploy script and read back what it printed."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
EXAMPLE_CONFIG = DEPLOY / "config.example.env"
SCRIPTS = sorted(p.name for p in DEPLOY.glob("*.sh") if p.name not in {"lib.sh", "vm-startup.sh"})


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    def commands(self) -> list[list[str]]:
        """Every command line printed in dry-run ("+ " lines), as argv lists."""
        return [shlex.split(line[2:]) for line in self.stdout.splitlines() if line.startswith("+ ")]

    def find(self, *prefix: str) -> list[list[str]]:
        """The printed commands that start with ``prefix``."""
        return [argv for argv in self.commands() if tuple(argv[: len(prefix)]) == prefix]


def script_env(**extra: str) -> dict[str, str]:
    """The environment a script runs in: this venv's tools (aws) first, a fixed image tag."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, "IMAGE_TAG": "test", **extra}


def run_script(
    script: str,
    *args: str,
    config: Path = EXAMPLE_CONFIG,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> Result:
    """``deploy/SCRIPT --config CONFIG ARGS...`` from the repository root."""
    proc = subprocess.run(
        ["bash", str(DEPLOY / script), "--config", str(config), *args],
        cwd=ROOT,
        env=env or script_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def config_with(tmp: Path, **overrides: str) -> Path:
    """The example config with some settings replaced (appended: the last one wins)."""
    lines = [EXAMPLE_CONFIG.read_text()] + [
        f"{key}={shlex.quote(value)}" for key, value in overrides.items()
    ]
    path = tmp / "config.env"
    path.write_text("\n".join(lines) + "\n")
    return path


def flag_value(argv: list[str], flag: str) -> list[str]:
    """Values of ``flag`` in argv, in either ``--flag=value`` or ``--flag value`` form."""
    values = []
    for i, arg in enumerate(argv):
        if arg.startswith(flag + "="):
            values.append(arg.split("=", 1)[1])
        elif arg == flag and i + 1 < len(argv):
            values.append(argv[i + 1])
    return values
