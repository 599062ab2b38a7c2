"""The response codecs of /predict and /batch-predict: rows (the default) and columns.

The client chooses with ``?format=rows|columns`` (``answer_format``). Both read the
service's ``Scored`` and the card's prediction rule (codecs.predictions.shape_of):

- rows: one object per instance, in request order; /batch-predict puts each failed
  instance's error in its place and counts them; /predict is all or nothing (its errors
  were raised before any answer).
- columns: ``outputs`` (field -> one value per instance, null where it failed), the
  ``classes`` a classifier's probability columns stand for, and the failures listed.

``items`` is the rows codec's list itself (a prediction dict or an ItemError per
instance), which the event scorer writes line by line.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import numpy as np

from functions.codecs.predictions import Columns, columns_in_order, shape_for
from functions.errors import ItemError, Problem, RequestError
from functions.service import Scored


def answer_format(query: bytes) -> str:
    """``rows`` or ``columns``, from the request's query string (400 for anything else)."""
    if not query or query == b"format=rows":
        return "rows"
    if query == b"format=columns":  # the common query, without parsing it
        return "columns"
    value = parse_qs(query.decode("latin-1"), keep_blank_values=True).get("format",
                                                                          ["rows"])[-1]
    if value not in ("rows", "columns"):
        raise RequestError(f"format must be rows or columns, got {value!r}",
                           [Problem("rows or columns", None, "format")])
    return value


def _columns(scored: Scored) -> Columns | None:
    if scored.outputs is None:
        return None
    return shape_for(scored.model).columns(scored.outputs, scored.rows)


def items(scored: Scored) -> list[dict[str, Any] | ItemError]:
    """One prediction dict or ItemError per instance, in request order."""
    outputs = scored.outputs
    preds = [] if outputs is None else shape_for(scored.model).rows(outputs, scored.rows)
    notes, failures, src = scored.notes, scored.failures, scored.src
    if src is None and not notes:
        return preds  # type: ignore[return-value]
    order = range(scored.n) if src is None else src.tolist()
    out: list[dict[str, Any] | ItemError] = []
    for i, j in enumerate(order):
        if j < 0:
            out.append(failures[i])
        else:
            out.append({**preds[j], **notes[i]} if notes and i in notes else preds[j])
    return out


def predict_body(scored: Scored) -> dict[str, Any]:
    """/predict in rows: every instance scored (failures were raised)."""
    return {"predictions": items(scored), "model_version": scored.model.card.version}


def batch_body(scored: Scored) -> dict[str, Any]:
    """/batch-predict in rows: each failed instance's error in its place."""
    answers = items(scored)
    if scored.failures:
        answers = [{"error": item.body(i)} if isinstance(item, ItemError) else item
                   for i, item in enumerate(answers)]
    return {"predictions": answers, "errors": len(scored.failures),
            "unique_rows": scored.unique_rows, "model_version": scored.model.card.version}


def columns_body(scored: Scored) -> dict[str, Any]:
    """Either route in columns; failures listed after the columns."""
    cols = _columns(scored)
    if scored.src is not None or scored.notes or cols is None:
        src = np.arange(scored.n) if scored.src is None else scored.src
        cols = columns_in_order(cols, src, scored.notes)
    body: dict[str, Any] = {"outputs": cols.writable()}
    if cols.classes is not None:
        body["classes"] = cols.classes
    failures = scored.failures
    body["errors"] = len(failures)
    if failures:
        body["failures"] = [failures[i].body(i) for i in sorted(failures)]
    body["unique_rows"] = scored.unique_rows
    body["model_version"] = scored.model.card.version
    return body
