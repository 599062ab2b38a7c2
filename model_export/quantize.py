"""The ``quantize`` subcommand: a dynamic int8 variant, kept only within its accuracy budget.

Weights of MatMul (and Gemm, rewritten to MatMul first: torch exports ``nn.Linear`` as
Gemm, which onnxruntime's dynamic quantisation skips) become int8; activations are
quantised on the fly. The report gives file size, latency at batch 1 and 1,000, and the
change on held-out rows: accuracy against targets when the rows have them, and always the
largest output difference and label agreement against the float model. A variant over
budget is not written (exit 6), so it cannot be published.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from model_export import budget, cards, graph_edits, options, runtime, variants
from model_export.errors import BudgetExceeded, ExportError
from model_export.progress import Progress

QUANTISABLE = {"MatMul", "Gemm", "Conv", "Attention", "LSTM", "Gather"}
INT8_OPS = {"MatMulInteger", "DynamicQuantizeMatMul", "ConvInteger", "QAttention",
            "DynamicQuantizeLSTM", "GatherInt8"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quantize", help="dynamic int8 variant with size/latency/accuracy report",
                       description=__doc__)
    p.add_argument("model", type=Path, help="the float .onnx file (its card beside it)")
    p.add_argument("--out", type=Path, help="default: MODEL.int8.onnx")
    options.add_rows(p, held_out=True)
    budget.add_args(p, max_abs_error=0.05, min_label_agreement=0.99)
    p.add_argument("--repeat", type=int, default=20, help="timed runs per median (20)")
    p.set_defaults(func=run)


def quantize(model: Path) -> bytes:
    """The int8 model's bytes; ExportError when the graph has nothing to quantise."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    proto = cards.load_onnx(model)
    kinds = {n.op_type for n in proto.graph.node}
    if not kinds & QUANTISABLE:
        raise ExportError(f"nothing to quantise in {model.name}: its operators "
                          f"({', '.join(sorted(kinds))}) have no dynamic int8 kernels")
    graph_edits.gemm_to_matmul(proto)
    graph_edits.dedupe_opsets(proto)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(proto, str(src))
        logging.getLogger().setLevel(logging.ERROR)  # its "consider pre-processing" hint
        try:
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
        except Exception as exc:  # the quantiser's errors have no common base
            raise ExportError(f"onnxruntime could not quantise {model.name}: {exc}") from exc
        data = dst.read_bytes()
    if not {n.op_type for n in onnx.load_from_string(data).graph.node} & INT8_OPS:
        raise ExportError(f"onnxruntime quantised no weights of {model.name}")
    return data


def measure(models: dict[str, runtime.OnnxModel], X: np.ndarray,
            repeat: int) -> dict[str, dict[str, float]]:
    """Latency at batch 1 and 1,000 (median ms) for each of ``models`` (label -> session)."""
    big = np.resize(X, (1000, *X.shape[1:])).astype(np.float32)
    out: dict[str, dict[str, float]] = {}
    with Progress("timing latency", 2 * len(models), quiet=False) as bar:
        for label, m in models.items():
            out[label] = {"batch_1_ms": runtime.latency_ms(m, X[:1], repeat)}
            bar.advance()
            out[label]["batch_1000_ms"] = runtime.latency_ms(m, big, max(3, repeat // 4))
            bar.advance()
    return out


def run(args: argparse.Namespace) -> None:
    card = cards.read_card(args.model)
    out = variants.out_path(args, "int8")
    with Progress("quantising", 1) as bar:
        data = quantize(args.model)
        bar.advance()
    held = options.sample_rows(args, card)
    sessions = {"float": runtime.OnnxModel(args.model), "int8": runtime.OnnxModel(data)}
    ref, got = (sessions[k].predict(held.X) for k in ("float", "int8"))
    report: dict[str, Any] = {
        "weight_type": "int8", "rows": len(held.X), "rows_origin": held.origin,
        "size_bytes_before": args.model.stat().st_size, "size_bytes_after": len(data),
        "latency": measure(sessions, held.X, args.repeat),
        **budget.evaluate(ref, got, card, held.y, args),
    }
    print(format_report(report))
    if not report["passed"]:
        raise BudgetExceeded(f"int8 variant of {args.model.name} refused, not written: "
                             + "; ".join(report["failures"]))
    variants.write(data, out, card, "quantize", report)
    print(f"wrote {out} and {cards.card_path(out)}")


def format_report(r: dict[str, Any]) -> str:
    lat = r["latency"]
    lines = [
        f"size: {r['size_bytes_before']:,} B -> {r['size_bytes_after']:,} B",
        f"latency batch 1: {lat['float']['batch_1_ms']:.3f} ms -> "
        f"{lat['int8']['batch_1_ms']:.3f} ms",
        f"latency batch 1000: {lat['float']['batch_1000_ms']:.3f} ms -> "
        f"{lat['int8']['batch_1000_ms']:.3f} ms",
    ]
    lines.extend(budget.summary_lines(r, r["rows"]))
    return "\n".join(lines)
