"""The venvs of the heavy clients the suite drives (kserve, SAM CLI, openai + LangChain),
built by ``make clients`` from tests/clients/NAME.txt into .cache/clients/NAME: installed
by make, never inside a test's time."""

from __future__ import annotations

from pathlib import Path

from tests.servers import ROOT

REQUIREMENTS = ROOT / "tests" / "clients"
VENVS = ROOT / ".cache" / "clients"


def client_bin(name: str, program: str = "python") -> Path:
    """``program`` in client venv ``name``; AssertionError naming ``make clients`` when the
    venv is missing or was built from other requirements than tests/clients/NAME.txt."""
    wanted = (REQUIREMENTS / f"{name}.txt").read_bytes()
    stamp = VENVS / name / ".installed"
    assert stamp.exists() and stamp.read_bytes() == wanted, (
        f"client venv {name!r} is missing or stale: run `make clients`")
    return VENVS / name / "bin" / program
