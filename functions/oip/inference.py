"""Run decoded Open Inference Protocol feeds through the same core as /predict.

A model with one row-shaped input ([batch, n_features]) takes the core's path: the NaN
policy of the card, ``dedupe`` (identical rows scored once), ``PredictionService.run_rows``
(one model call; big batches off the event loop), outputs expanded back to request order,
and the same row counters in /metrics. Any other model gets its tensors fed as they are.

Feature lookups do not apply here: a v2 tensor carries every feature the graph takes, and
has no key field to look anything up by.
"""

from __future__ import annotations

import numpy as np

from functions.errors import RequestError
from functions.model.isolation import MODEL_ERRORS, refusal_text
from functions.model.onnx_model import OnnxModel
from functions.service import PredictionService, count_received
from functions.tabular import refused_non_finite


def _check_finite(model: OnnxModel, name: str, matrix: np.ndarray) -> None:
    """The card's NaN policy, as /predict applies it, naming the first bad row and feature."""
    bad = refused_non_finite(matrix, model.card.allow_nan)
    if bad is None:
        return
    row, col = bad
    names = model.card.feature_names
    feature = names[col] if col < len(names) else f"column {col}"
    raise RequestError(f"input '{name}' row {row}, {feature}: {matrix[row, col]} is not allowed "
                       "(the model needs finite values)")


async def infer_feeds(service: PredictionService, model: OnnxModel,
                      feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every model output for ``feeds``, batch dimension in request order; a value only
    the model finds wrong (an id out of an embedding's range) is a 400 with its message."""
    try:
        return await _infer(service, model, feeds)
    except MODEL_ERRORS as exc:
        raise RequestError(f"the model refused the inputs: {refusal_text(exc)}") from None


async def _infer(service: PredictionService, model: OnnxModel,
                 feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    row = model.row_input
    if row is None or row.name not in feeds:
        return await service.run_feeds(model, feeds)
    matrix = feeds[row.name]
    _check_finite(model, row.name, matrix)
    count_received(len(matrix))
    unique, inverse, outputs = await service.run_unique(model, matrix)
    if unique is matrix:
        return outputs
    n = len(unique)
    return {name: out[inverse] if isinstance(out, np.ndarray) and out.ndim and len(out) == n
            else out for name, out in outputs.items()}
