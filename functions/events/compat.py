"""Is a new model version a drop-in replacement for the one being served?

Clients were written against the served signature, so a roll-out may change weights, not
the contract: same model name, task, inputs (names, dtypes, ranks, fixed dimensions),
feature names and labels; and the outputs the new card names must exist in its graph.
"""

from __future__ import annotations

from functions.card import TensorSpec
from functions.model.onnx_model import OnnxModel


def _spec_problems(kind: str, old: list[TensorSpec], new: list[TensorSpec]) -> list[str]:
    if [s.name for s in old] != [s.name for s in new]:
        return [f"{kind} names {[s.name for s in new]} differ from {[s.name for s in old]}"]
    problems = []
    for a, b in zip(old, new):
        if a.dtype != b.dtype:
            problems.append(f"{kind} {a.name}: dtype {b.dtype} differs from {a.dtype}")
        if len(a.shape) != len(b.shape):
            problems.append(f"{kind} {a.name}: rank {len(b.shape)} differs from {len(a.shape)}")
            continue
        for axis, (da, db) in enumerate(zip(a.shape, b.shape)):
            if isinstance(da, int) and isinstance(db, int) and da != db:
                problems.append(f"{kind} {a.name}: dimension {axis} is {db}, was {da}")
    return problems


def incompatibilities(old: OnnxModel | None, new: OnnxModel) -> list[str]:
    """Why ``new`` cannot replace ``old`` (empty: it can). Nothing served yet: anything goes."""
    card = new.card
    problems = [f"card names output {name!r}, the graph has {new.output_names}"
                for name in (card.label_output, card.probability_output, card.value_output)
                if name and name not in new.output_names]
    if old is None:
        return problems
    was = old.card
    if card.name != was.name:
        problems.append(f"model name {card.name!r} is not the served {was.name!r}")
    if card.task != was.task:
        problems.append(f"task {card.task} differs from {was.task}")
    if list(card.feature_names) != list(was.feature_names):
        problems.append(f"feature names {card.feature_names} differ from {was.feature_names}")
    if (card.labels or None) != (was.labels or None):
        problems.append(f"labels {card.labels} differ from {was.labels}")
    return problems + _spec_problems("input", old.inputs, new.inputs)
