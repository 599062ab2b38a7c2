"""One clean row for a plain tabular model, answered without the batch machinery.

Most traffic a function serves is one row at a time. ``PredictionService.predict`` answers
a batch of one correctly, but pays on every request for what only batches need: per-item
failures, dedupe, isolation, notes, the columns format. For a 10 µs model that is most of
the request. ``OneRow`` answers the common case alone: a row ``tabular.clean_rows``
accepts (the same check the batch path makes first), a model that runs inline without
merging, and a call that succeeds. It uses the same model call, counters and shaping
functions, so the answer is the one the batch path gives (tests/test_one_row.py compares
the bytes). Anything else returns None and takes the batch path, which answers, and words
every error, as before.
"""

from __future__ import annotations

from typing import Any

from functions.model.isolation import MODEL_ERRORS
from functions.model.onnx_model import OnnxModel
from functions.model.runner import ModelRunner
from functions.predictions import row_shaper, rows_of_columns, shape_columns
from functions.rows import TabularPlan
from functions.tabular import clean_rows


class OneRow:
    """Answers one clean row of ``model``'s tabular plan, or declines with None."""

    def __init__(self, model: OnnxModel, plan: TabularPlan, runner: ModelRunner) -> None:
        self.model, self.runner, self.schema, self.input = model, runner, plan.schema, plan.input
        self.shape = row_shaper(model.card)

    @staticmethod
    def applies(plan: Any) -> bool:
        """Plain float rows with nothing to look up (what ``clean_rows`` takes whole)."""
        return isinstance(plan, TabularPlan) and not plan.looks_up \
            and plan.schema.dtype.kind == "f"

    def answer(self, instances: list[Any]) -> dict[str, Any] | None:
        """The prediction of ``instances`` (one row), or None: the batch path answers."""
        x = clean_rows(instances, self.schema)
        if x is None:
            return None
        try:
            outputs = self.runner.run_now({self.input: x}, 1)
        except MODEL_ERRORS:  # the batch path isolates it and says why
            return None
        if outputs is None:
            return None
        item = self.shape(outputs) if self.shape is not None else None
        if item is None:
            model = self.model
            columns = shape_columns(model.card, outputs, 1, model.output_labels)
            item = rows_of_columns(columns, 1)[0]
        return item
