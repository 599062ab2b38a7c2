"""The ``quantize`` subcommand: a dynamic int8 variant, kept only within its accuracy budget.

Weights of MatMul (and Gemm, rewritten to MatMul first: torch exports ``nn.Linear`` as
Gemm, which onnxruntime's dynamic quantisation skips) become int8; activations are
quantised on the fly. Transformer models (``hf`` cards) get per-channel weight scales and
keep their feed-forward projections in float (``TRANSFORMER_KEEP_FLOAT``): their
activations carry the outliers that int8 ruins (docs/model_export.md has the measurement).

The report gives file size, latency at batch 1 and ``--batch``
(1,000; 32 for text models), and the change on held-out rows: accuracy against targets
when the rows have them, and always the largest output difference, label agreement and,
for embeddings, the cosine similarity against the float model. A variant over
budget is not written (exit 6), so it cannot be published.
"""

from __future__ import annotations

import argparse
import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from functions.config.card import ModelCard
from model_export import card_files, graph_edits, options
from model_export.checks import budget, onnx_runs
from model_export.exit_codes import BudgetExceeded, ExportError, InputError
from model_export.progress import ProgressBar
from model_export.samples import drawn, row_files
from model_export.samples.row_files import Rows
from model_export.steps import variants

QUANTISABLE = {"MatMul", "Gemm", "Conv", "Attention", "LSTM", "Gather"}
TRANSFORMER_KEEP_FLOAT = r"layer\.\d+/(intermediate|output)/dense/|/ffn/lin[12]/|/mlp/fc[12]/"
INT8_OPS = {"MatMulInteger", "DynamicQuantizeMatMul", "ConvInteger", "QAttention",
            "DynamicQuantizeLSTM", "GatherInt8"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quantize", help="dynamic int8 variant with size/latency/accuracy report",
                       description=__doc__)
    p.add_argument("model", type=Path, help="the float .onnx file (its card beside it)")
    p.add_argument("--out", type=Path, help="default: MODEL.int8.onnx")
    options.add_rows(p, held_out=True)
    budget.add_args(p, max_abs_error=0.05, min_label_agreement=0.99, min_cosine=0.99)
    p.add_argument("--repeat", type=int, default=20, help="timed runs per median (20)")
    p.add_argument("--batch", type=int, metavar="N",
                   help="the large batch timed (default 1000; 32 for text models)")
    p.add_argument("--per-channel", action=argparse.BooleanOptionalAction, default=None,
                   help="one weight scale per output channel (default: on for transformers)")
    p.add_argument("--keep-float", metavar="REGEX",
                   help="nodes whose name matches stay float (default for transformers: "
                   "the feed-forward projections)")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class Recipe:
    """How to quantise: per-channel scales, and which nodes (name regex) stay float."""

    per_channel: bool = False
    keep_float: str | None = None


def recipe(args: argparse.Namespace, card: ModelCard) -> Recipe:
    transformer = card.framework.get("name") == "transformers"
    per_channel = transformer if args.per_channel is None else args.per_channel
    keep = args.keep_float if args.keep_float is not None else (
        TRANSFORMER_KEEP_FLOAT if transformer else None)
    try:
        re.compile(keep or "")
    except re.error as exc:
        raise InputError(f"--keep-float {keep!r}: {exc}") from exc
    return Recipe(per_channel, keep or None)


def quantize(model: Path, how: Recipe = Recipe()) -> bytes:
    """The int8 model's bytes; ExportError when the graph has nothing to quantise."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    proto = card_files.load_onnx(model)
    kinds = {n.op_type for n in proto.graph.node}
    if not kinds & QUANTISABLE:
        raise ExportError(f"nothing to quantise in {model.name}: its operators "
                          f"({', '.join(sorted(kinds))}) have no dynamic int8 kernels")
    graph_edits.gemm_to_matmul(proto)
    graph_edits.dedupe_opsets(proto)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(proto, str(src))
        keep = [n.name for n in proto.graph.node
                if how.keep_float and re.search(how.keep_float, n.name)]
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # its "consider pre-processing" hint, for this call only
        try:  # DefaultTensorType: fused (com.microsoft) nodes defeat shape inference
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=how.per_channel,
                             nodes_to_exclude=keep, extra_options={
                                 "DefaultTensorType": onnx.TensorProto.FLOAT})
        except Exception as exc:  # the quantiser's errors have no common base
            raise ExportError(f"onnxruntime could not quantise {model.name}: {exc}") from exc
        finally:
            root.setLevel(level)
        data = dst.read_bytes()
    if not {n.op_type for n in onnx.load_from_string(data).graph.node} & INT8_OPS:
        raise ExportError(f"onnxruntime quantised no weights of {model.name}")
    return data


def measure(models: dict[str, onnx_runs.ExportedOnnx], rows: Rows, batch: int,
            repeat: int) -> dict[str, dict[str, float]]:
    """Latency at batch 1 and ``batch`` (median ms) for each of ``models`` (label -> model)."""
    one, big = drawn.resize(rows, 1), drawn.resize(rows, batch)
    out: dict[str, dict[str, float]] = {}
    with ProgressBar("timing latency", 2 * len(models), quiet=False) as bar:
        for label, m in models.items():
            out[label] = {"batch_1_ms": onnx_runs.latency_ms(m, one, repeat)}
            bar.advance()
            out[label][f"batch_{batch}_ms"] = onnx_runs.latency_ms(m, big, max(3, repeat // 4))
            bar.advance()
    return out


def run(args: argparse.Namespace) -> None:
    card = card_files.read_card(args.model)
    out = variants.out_path(args, "int8")
    how = recipe(args, card)
    with ProgressBar("quantising", 1) as bar:
        data = quantize(args.model, how)
        bar.advance()
    held = options.sample_rows(args, card, args.model)
    batch = args.batch or (32 if card.tokenizer or row_files.is_text(card.inputs) else 1000)
    sessions = {"float": onnx_runs.ExportedOnnx(args.model, card=card),
                "int8": onnx_runs.ExportedOnnx(data, card=card)}
    ref, got = (sessions[k].predict(held.feeds) for k in ("float", "int8"))
    report: dict[str, Any] = {
        "weight_type": "int8", "per_channel": how.per_channel, "keep_float": how.keep_float,
        "rows": held.n, "rows_origin": held.origin, "batch": batch,
        "size_bytes_before": args.model.stat().st_size, "size_bytes_after": len(data),
        "latency": measure(sessions, held, batch, args.repeat),
        **budget.evaluate(ref, got, card, held.y, args),
    }
    print(format_report(report))
    if not report["passed"]:
        raise BudgetExceeded(f"int8 variant of {args.model.name} refused, not written: "
                             + "; ".join(report["failures"]))
    variants.write(data, out, card, "quantize", report)
    print(f"wrote {out} and {card_files.card_path(out)}")


def format_report(r: dict[str, Any]) -> str:
    lat = r["latency"]
    lines = [f"size: {r['size_bytes_before']:,} B -> {r['size_bytes_after']:,} B"]
    lines.extend(f"latency batch {b}: {lat['float'][f'batch_{b}_ms']:.3f} ms -> "
                 f"{lat['int8'][f'batch_{b}_ms']:.3f} ms" for b in (1, r["batch"]))
    lines.extend(budget.summary_lines(r, r["rows"]))
    return "\n".join(lines)
