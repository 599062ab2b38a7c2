"""Compare two models' outputs on the same rows: the verdict of verify, quantize and prune.

Float outputs pass when every element satisfies ``|a - b| <= atol + rtol * |a|`` (``a`` is
the reference), but for a ``max_outlier_share`` of them (gradient-boosted trees: a float32
input equal to a threshold stored in float32 can take the other branch). The card's
embedding output also reports the cosine similarity per row; with ``min_cosine`` set, that
is its test instead of the element-wise one. Label outputs pass when the share of rows
whose labels agree is at least ``min_label_agreement``; a disagreement where the
reference's two best probabilities are within ``tie_margin`` of each other is a tie,
reported but not held against the model. A failing output's summary names the
model_export flag (and the value) that would accept what was measured, so a user who
judges the difference harmless knows what to pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from functions.config.card import ModelCard


@dataclass(frozen=True)
class Tolerance:
    """How close is close enough."""

    atol: float = 1e-4
    rtol: float = 1e-3
    min_label_agreement: float = 1.0
    tie_margin: float = 1e-5
    """A label disagreement is a tie when the reference's top two probabilities are this close."""
    max_outlier_share: float = 0.0
    """Share of float values allowed beyond atol/rtol."""
    min_cosine: float | None = None
    """Embeddings: least cosine similarity per row (replaces the element-wise test)."""


def compare(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], card: ModelCard,
            tol: Tolerance) -> dict[str, Any]:
    """Per-output statistics and ``passed`` / ``failures`` for ``got`` against ``ref``."""
    report: dict[str, Any] = {"tolerance": asdict(tol), "outputs": {}, "failures": []}
    margin = _top2_margin(ref.get(card.probability_output or ""))
    for name, a in ref.items():
        if name not in got:
            report["failures"].append(f"output {name!r} missing from the model under test")
            continue
        b = got[name]
        if a.size != b.size:
            report["failures"].append(f"output {name!r}: {a.size} values, expected {b.size}")
            continue
        if _is_label(a) or name == card.label_output:
            stats = _labels(a.reshape(-1), b.reshape(-1), margin, tol)
        else:
            stats = _floats(a.reshape(-1).astype(np.float64), b.reshape(-1).astype(np.float64),
                            tol)
            if name == card.embedding_output:
                stats = _cosines(a, b, stats, tol)
        report["outputs"][name] = stats
        if not stats.pop("ok"):
            report["failures"].append(f"output {name!r}: {stats['summary']}")
    report["passed"] = not report["failures"]
    return report


def _is_label(a: np.ndarray) -> bool:
    return a.dtype.kind in "iuUSOb"


def _top2_margin(probs: np.ndarray | None) -> np.ndarray | None:
    if probs is None or probs.ndim != 2 or probs.shape[1] < 2:
        return None
    top = np.sort(probs, axis=1)[:, -2:]
    return top[:, 1] - top[:, 0]


def _labels(a: np.ndarray, b: np.ndarray, margin: np.ndarray | None,
            tol: Tolerance) -> dict[str, Any]:
    differ = a.astype(str) != b.astype(str)
    ties = differ & (margin <= tol.tie_margin) if margin is not None else np.zeros_like(differ)
    real = int(differ.sum() - ties.sum())
    agreement = 1.0 - real / max(len(a), 1)
    ok = agreement >= tol.min_label_agreement
    first = np.flatnonzero(differ & ~ties)[:5].tolist()
    summary = (f"labels agree on {agreement:.2%} of rows (need {tol.min_label_agreement:.2%})"
               + (f"; first disagreeing rows {first}" if first else ""))
    if not ok:
        summary += f"; to accept it, try --min-label-agreement {_floor(agreement)}"
    return {"ok": ok, "agreement": round(agreement, 6), "mismatches": real,
            "ties": int(ties.sum()), "summary": summary}


def _floats(a: np.ndarray, b: np.ndarray, tol: Tolerance) -> dict[str, Any]:
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    both = ~(nan_a | nan_b)
    diff = np.abs(a[both] - b[both])
    allowed = tol.atol + tol.rtol * np.abs(a[both])
    over = int((diff > allowed).sum()) + int((nan_a != nan_b).sum())
    max_abs = float(diff.max()) if diff.size else 0.0
    worst = int(np.flatnonzero(both)[int(diff.argmax())]) if diff.size else None
    summary = (f"max abs diff {max_abs:.3g} (atol {tol.atol:g}, rtol {tol.rtol:g}); "
               f"{over} of {a.size} values out of tolerance")
    if tol.max_outlier_share:
        summary += f" (allowed: {tol.max_outlier_share:.2%})"
    ok = over <= tol.max_outlier_share * a.size
    if not ok:
        summary += (f"; to accept it, try --outlier-share {_ceil(over / a.size)} (values "
                    f"allowed beyond tolerance) or --atol {_ceil(max_abs)}")
    return {"ok": ok, "max_abs_diff": max_abs,
            "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
            "out_of_tolerance": over, "worst_index": worst, "summary": summary}


def _ceil(x: float) -> str:
    """``x`` rounded up to two significant digits, as a flag value."""
    if x <= 0:
        return "0"
    scale = 10 ** (np.floor(np.log10(x)) - 1)
    return f"{np.ceil(x / scale) * scale:.2g}"


def _floor(x: float) -> str:
    """``x`` in [0, 1] rounded down to four decimals, as a flag value."""
    return f"{np.floor(x * 1e4) / 1e4:g}"


def _cosines(a: np.ndarray, b: np.ndarray, stats: dict[str, Any],
             tol: Tolerance) -> dict[str, Any]:
    """Add per-row cosine similarity of embeddings ``a`` and ``b`` [N, D] to ``stats``."""
    a2, b2 = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    norms = np.linalg.norm(a2, axis=1) * np.linalg.norm(b2, axis=1)
    cos = (a2 * b2).sum(axis=1) / np.where(norms == 0, 1.0, norms)
    stats.update(min_cosine=float(cos.min()), mean_cosine=float(cos.mean()))
    stats["summary"] += f"; cosine similarity min {cos.min():.6f}, mean {cos.mean():.6f}"
    if tol.min_cosine is not None:
        stats["ok"] = bool(cos.min() >= tol.min_cosine)
        stats["summary"] += f" (need >= {tol.min_cosine:g})"
    return stats


def class_index(outputs: dict[str, np.ndarray], card: ModelCard) -> np.ndarray:
    """Predicted class index per row: argmax of probabilities, else the label output."""
    if card.probability_output and card.probability_output in outputs:
        return outputs[card.probability_output].argmax(axis=1)
    labels = outputs[card.label_output or "label"].reshape(-1)
    if labels.dtype.kind in "iu":
        return labels.astype(np.int64)
    lookup = {name: i for i, name in enumerate(card.labels or [])}
    return np.array([lookup.get(str(v), -1) for v in labels])


def target_index(y: np.ndarray, card: ModelCard) -> np.ndarray:
    """Held-out class targets (label names, or class indices) as class indices."""
    names = card.labels or []
    lookup = {name: i for i, name in enumerate(names)}
    out = []
    for v in y.reshape(-1):
        text = str(v.item() if hasattr(v, "item") else v)
        if text in lookup:
            out.append(lookup[text])
        elif text.removesuffix(".0").lstrip("-").isdigit():
            out.append(int(float(text)))
        else:
            out.append(-1)
    return np.array(out)


def quality(outputs: dict[str, np.ndarray], card: ModelCard, y: np.ndarray) -> dict[str, float]:
    """Accuracy (classifiers) or max/mean absolute error (regressors) against targets."""
    if card.task == "classification":
        hit = class_index(outputs, card) == target_index(y, card)
        return {"accuracy": round(float(hit.mean()), 6)}
    pred = outputs[card.value_output or "value"].reshape(-1).astype(np.float64)
    err = np.abs(pred - y.reshape(-1).astype(np.float64))
    return {"max_abs_error": float(err.max()), "mean_abs_error": float(err.mean())}
