"""Each model kind of tests/model_kinds.py built once per session (the ``built_model``
fixture), and all-MiniLM-L6-v2 exported once (``minilm_model``).

A builder's folder is shared by every test that asks for that kind: tests read it (serve
it, upload it) and never write into it; a test that needs a changed copy copies it first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests import model_kinds as mk

BUILDERS: dict[str, Callable[[Path], tuple[Any, ...]]] = {
    "two_input": mk.two_input_model,
    "image": mk.image_model,
    "string": mk.string_model,
    "gbdt": mk.gbdt_zipmap_model,
    "bert": mk.tiny_bert,
}
"""kind -> builder; each returns (model path, the source model's predict, ...)."""


class BuiltModels:
    """``built(kind)`` -> what ``BUILDERS[kind]`` returned, built on first use into
    ``root/kind``; later calls return the same tuple."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._built: dict[str, tuple[Any, ...]] = {}

    def __call__(self, kind: str) -> tuple[Any, ...]:
        if kind not in self._built:
            self._built[kind] = BUILDERS[kind](self.root / kind)
        return self._built[kind]
