"""Each model kind of tests/model_kinds.py built once per session (the ``built_model``
fixture), and all-MiniLM-L6-v2 exported once (``minilm_model``), however many pytest-xdist
workers the session has.

The first worker to ask for a build makes it, under a file lock, in a folder that every
worker of the session shares (pytest's base temporary folder of the run, above each
worker's own); the builder's return value is pickled beside it, and a worker that asks
later waits for the lock and loads it. A build that fails leaves nothing behind: the next
asker builds again, and fails the same way.

A build's folder is shared by every test that asks for it: tests read it (serve it,
upload it) and never write into it; a test that needs a changed copy copies it first.
"""

from __future__ import annotations

import fcntl
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import model_kinds as mk

BUILDERS: dict[str, Callable[[Path], tuple[Any, ...]]] = {
    "two_input": mk.two_input_model,
    "image": mk.image_model,
    "string": mk.string_model,
    "gbdt": mk.gbdt_zipmap_model,
    "bert": mk.tiny_bert,
}
"""kind -> builder; each returns (model path, the source model's predict, ...)."""

VALUE = "built.pickle"


def session_root(factory: pytest.TempPathFactory, config: pytest.Config) -> Path:
    """The folder every worker of this session shares: under pytest-xdist the parent of
    the worker's base temporary folder (the run's), in one process the base folder."""
    base = factory.getbasetemp()
    root = (base.parent if hasattr(config, "workerinput") else base) / "session-builds"
    root.mkdir(exist_ok=True)
    return root


def built_once(root: Path, name: str, build: Callable[[Path], Any]) -> Any:
    """``build(root / name)``'s value, made by the first caller of the session (any worker)
    and loaded from its pickle by every later one."""
    folder, value = root / name, root / name / VALUE
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if value.exists():
            return pickle.loads(value.read_bytes())
        shutil.rmtree(folder, ignore_errors=True)  # what a failed build left
        made = build(folder)
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / (VALUE + ".part")
        partial.write_bytes(pickle.dumps(made))
        partial.rename(value)
        return made


class BuiltModels:
    """``built(kind)`` -> what ``BUILDERS[kind]`` returned, built once per session into
    ``root/kind`` (``built_once``); later calls in this process return the same tuple."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._built: dict[str, tuple[Any, ...]] = {}

    def __call__(self, kind: str) -> tuple[Any, ...]:
        if kind not in self._built:
            self._built[kind] = built_once(self.root, kind, BUILDERS[kind])
        return self._built[kind]
