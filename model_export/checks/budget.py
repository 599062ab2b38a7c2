"""The accuracy budget a quantised or pruned variant must meet to be written at all.

``evaluate`` compares the variant's outputs with the original's on held-out rows: accuracy
against targets when the rows carry them (``--max-accuracy-drop``), and always the largest
output difference (``--max-abs-error``) and label agreement (``--min-label-agreement``);
for an embedding model the least cosine similarity per row (``--min-cosine``) is the test
of its embeddings.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np

from functions.config.card import ModelCard
from model_export.checks.parity import Tolerance, compare, quality


def add_args(p: argparse.ArgumentParser, max_abs_error: float,
             min_label_agreement: float, min_cosine: float = 0.99) -> None:
    g = p.add_argument_group("budget (a variant beyond it is refused and not written)")
    g.add_argument("--max-accuracy-drop", type=float, default=0.01, metavar="SHARE",
                   help="largest accuracy loss on --target rows, 0.01 = one point (0.01)")
    g.add_argument("--max-abs-error", type=float, default=max_abs_error,
                   help=f"largest |original - variant| on probability/value outputs "
                   f"({max_abs_error:g})")
    g.add_argument("--min-label-agreement", type=float, default=min_label_agreement,
                   metavar="SHARE", help="least share of rows labelled as the original "
                   f"model labels them ({min_label_agreement:g})")
    g.add_argument("--min-cosine", type=float, default=min_cosine,
                   help="embeddings: least cosine similarity to the original per row "
                   f"({min_cosine:g})")


def evaluate(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], card: ModelCard,
             y: np.ndarray | None, args: argparse.Namespace) -> dict[str, Any]:
    """``change`` (vs original), ``quality_before/after`` (vs targets), ``passed``."""
    tol = Tolerance(args.max_abs_error, 0.0, args.min_label_agreement,
                    min_cosine=args.min_cosine if card.embedding_output else None)
    report: dict[str, Any] = {"change": compare(ref, got, card, tol),
                              "budget": {"max_accuracy_drop": args.max_accuracy_drop,
                                         "max_abs_error": _finite(args.max_abs_error),
                                         "min_label_agreement": args.min_label_agreement,
                                         "min_cosine": args.min_cosine}}
    failures = list(report["change"]["failures"])
    if y is not None:
        before, after = quality(ref, card, y), quality(got, card, y)
        report["quality_before"], report["quality_after"] = before, after
        drop = before.get("accuracy", 0.0) - after.get("accuracy", 0.0)
        if drop > args.max_accuracy_drop:
            failures.append(f"accuracy drops by {drop:.4f} (budget {args.max_accuracy_drop})")
    report["failures"], report["passed"] = failures, not failures
    return report


def summary_lines(report: dict[str, Any], rows: int) -> list[str]:
    """Quality change and per-output change, for the printed reports."""
    lines = []
    if "quality_before" in report:
        lines.append(f"on {rows} held-out rows: {report['quality_before']} -> "
                     f"{report['quality_after']}")
    lines.extend(f"vs original, {name}: {stats['summary']}"
                 for name, stats in report["change"]["outputs"].items())
    lines.append("budget: " + ("met" if report["passed"] else
                               "EXCEEDED: " + "; ".join(report["failures"])))
    return lines


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None  # JSON has no infinity
