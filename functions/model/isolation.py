"""Items the model itself refuses, isolated so that the rest of a batch is still scored.

Some bad values pass every check we can make before the model and fail inside it: an id
outside an embedding table, a shape a Reshape node cannot take. onnxruntime then fails the
whole call. ``run_isolating`` splits the batch in halves and runs each again, down to the
single rows that fail (k bad rows cost about 2k log2(n) extra calls, paid only on this
error path), and names the input at fault by running the failing row again with one input
at a time replaced by a neutral value (zeros, empty strings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument, RuntimeException

from functions.model.cuts import Finish
from functions.model.runner import ModelRunner

MODEL_ERRORS = (InvalidArgument, Fail, RuntimeException)
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")


@dataclass(frozen=True)
class Refusal:
    """Why the model refused one row, and the input at fault when one could be named."""

    message: str
    input: str | None


def refusal_text(exc: BaseException) -> str:
    """onnxruntime's message without its status prefix, first line, bounded."""
    lines = str(exc).strip().splitlines()
    text = _ORT_PREFIX.sub("", lines[0]) if lines else ""
    return text[:300] or type(exc).__name__


def _message(exc: BaseException) -> str:
    return f"the model refused this item: {refusal_text(exc)}"


def _rows(feeds: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {name: a[index] for name, a in feeds.items()}


def _join(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Outputs of consecutive row ranges, joined along the batch axis."""
    first = parts[0]
    return {name: np.concatenate([p[name] for p in parts]) if first[name].ndim else first[name]
            for name in first}


async def _culprit(runner: ModelRunner, row: dict[str, np.ndarray]) -> str | None:
    """The one input whose neutral stand-in makes the row pass, if exactly one does."""
    if len(row) == 1:
        return next(iter(row))
    found = []
    for name, value in row.items():
        neutral = np.full_like(value, "") if value.dtype == object else np.zeros_like(value)
        try:
            await runner.run({**row, name: neutral})
        except MODEL_ERRORS:
            continue
        found.append(name)
    return found[0] if len(found) == 1 else None


async def run_isolating(runner: ModelRunner, feeds: dict[str, np.ndarray],
                        failed: BaseException | None = None, finish: Finish | None = None,
                        ) -> tuple[dict[str, np.ndarray] | None, np.ndarray, dict[int, Refusal]]:
    """(outputs of the kept rows, kept row indices ascending, refusals by row index).

    ``failed``: the model error the caller's own call of these feeds already met (it is
    not run again whole). ``finish``: applied to every call's outputs (pooling).
    """
    n = len(next(iter(feeds.values())))
    if failed is None:
        try:
            return await runner.run(feeds, finish), np.arange(n), {}
        except MODEL_ERRORS as exc:
            failed = exc
    if n == 1:
        return None, np.arange(0), {0: Refusal(_message(failed), await _culprit(runner, feeds))}
    kept: list[np.ndarray] = []
    parts: list[dict[str, np.ndarray]] = []
    refused: dict[int, Refusal] = {}
    for lo, hi in ((0, n // 2), (n // 2, n)):
        index = np.arange(lo, hi)
        out, ok, bad = await run_isolating(runner, _rows(feeds, index), None, finish)
        if out is not None and len(ok):
            parts.append(out)
            kept.append(index[ok])
        refused.update({int(index[i]): why for i, why in bad.items()})
    if not parts:
        return None, np.arange(0), refused
    return _join(parts), np.concatenate(kept), refused
