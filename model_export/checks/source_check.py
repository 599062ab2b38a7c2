"""Parity between a source model and its ONNX export: run both, compare, record, fail loudly.

``check`` runs both models on the same rows (in chunks, with progress), compares them with
``parity.compare`` and returns the report that goes into the card's ``verify`` field.
``check_and_record`` also writes the report into the card beside the model and raises
ParityFailed when the export does not answer what the source answers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import msgspec
import numpy as np

from functions.config.card import ModelCard
from model_export import card_files
from model_export.checks import onnx_runs
from model_export.checks.parity import Tolerance, compare
from model_export.exit_codes import ParityFailed
from model_export.progress import ProgressBar
from model_export.samples.row_files import Feeds, Rows, take

CHUNK = 2048

Predict = Callable[[Feeds], dict[str, np.ndarray]]


class SourceModel(Protocol):
    """A model in its own framework, answering with the ONNX graph's output names."""

    description: str
    """e.g. ``scikit-learn 1.9.1 Pipeline``; shown in reports."""

    def predict(self, feeds: Feeds) -> dict[str, np.ndarray]:
        """Outputs for ``feeds`` (graph input name -> rows), keyed by graph output name."""


def run_chunked(predict: Predict, rows: Rows, label: str,
                quiet: bool = False) -> dict[str, np.ndarray]:
    """``predict`` over ``rows`` in chunks of CHUNK rows, with progress; outputs concatenated."""
    parts: list[dict[str, np.ndarray]] = []
    with ProgressBar(label, rows.n, " rows", quiet=quiet or rows.n <= CHUNK) as bar:
        for start in range(0, rows.n, CHUNK):
            parts.append(predict(take(rows.feeds, slice(start, start + CHUNK))))
            bar.advance(min(CHUNK, rows.n - start))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def check(model: Path, card: ModelCard, source: SourceModel, rows: Rows, tol: Tolerance,
          quiet: bool = False) -> dict[str, Any]:
    """Run source and ONNX model on ``rows`` and compare; the report says ``passed``."""
    onnx_model = onnx_runs.ExportedOnnx(model, card=card)
    ref = run_chunked(source.predict, rows, "source model", quiet)
    got = run_chunked(onnx_model.predict, rows, "onnx model", quiet)
    report = compare(ref, got, card, tol)
    report.update(rows=rows.n, rows_origin=rows.origin, source=source.description,
                  onnxruntime=onnx_runs.version(), model_sha256=card.sha256,
                  checked_at=card_files.now_iso())
    return report


def check_and_record(model: Path, card: ModelCard, source: SourceModel, rows: Rows,
                     tol: Tolerance, quiet: bool = False) -> ModelCard:
    """``check``, write the report into the card beside ``model``, print it; raise on failure."""
    report = check(model, card, source, rows, tol, quiet)
    card = msgspec.structs.replace(card, verify=report)
    card_files.write_card(model, card)
    print(format_report(report))
    if not report["passed"]:
        raise ParityFailed(f"{model.name} does not match its source model: "
                           + "; ".join(report["failures"]))
    return card


def format_report(report: dict[str, Any]) -> str:
    """The human-readable parity report printed on stdout."""
    verdict = "PASSED" if report["passed"] else "FAILED"
    lines = [f"parity {verdict}: {report['rows']} rows ({report['rows_origin']}), "
             f"source {report['source']} vs onnxruntime {report['onnxruntime']}"]
    for name, stats in report["outputs"].items():
        lines.append(f"  {name}: {stats['summary']}")
    lines.extend(f"  FAIL {msg}" for msg in report["failures"])
    return "\n".join(lines)
