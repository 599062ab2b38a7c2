"""Is a new model version a drop-in replacement for the one being served?

Clients were written against the served signature, so a roll-out may change weights, not
the contract: same model name, task, inputs (names, dtypes, ranks, fixed dimensions),
feature names and labels. (That the new card fits its own graph is checked when it loads:
functions.model.graph_check.)
"""

from __future__ import annotations

from functions.model.graph_check import spec_problems
from functions.model.onnx_model import OnnxModel


def incompatibilities(old: OnnxModel | None, new: OnnxModel) -> list[str]:
    """Why ``new`` cannot replace ``old`` (empty: it can). Nothing served yet: anything goes."""
    if old is None:  # the new card was checked against its own graph when it loaded
        return []
    card = new.card
    problems: list[str] = []
    was = old.card
    if card.name != was.name:
        problems.append(f"model name {card.name!r} is not the served {was.name!r}")
    if card.task != was.task:
        problems.append(f"task {card.task} differs from {was.task}")
    if list(card.feature_names) != list(was.feature_names):
        problems.append(f"feature names {card.feature_names} differ from {was.feature_names}")
    if (card.labels or None) != (was.labels or None):
        problems.append(f"labels {card.labels} differ from {was.labels}")
    return problems + spec_problems("input", old.inputs, new.inputs, "the served model has",
                                    "the new one has", same_order=True)
