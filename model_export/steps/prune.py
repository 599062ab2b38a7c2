"""The ``prune`` subcommand: global magnitude pruning of a PyTorch model, then export.

The smallest ``--amount`` share of all weight matrices' entries (every parameter with two
or more dimensions: Linear and Conv weights; biases are kept) is set to zero across the
whole model, and the pruned model is exported and verified like ``torch`` does. The report
gives the sparsity per layer and overall and the accuracy (or output) change on held-out
rows; a model beyond its budget is refused and not written.

Zeros alone do not make inference faster: the ONNX graph keeps dense weight tensors and
onnxruntime's dense kernels multiply zeros like any other number, and the file is as large
(it compresses better). Speed needs structured pruning (smaller layers) or sparse kernels.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from functions.config.card import ModelCard
from model_export import options
from model_export.checks import budget
from model_export.checks.parity import Tolerance
from model_export.exit_codes import BudgetExceeded, InputError
from model_export.samples import row_files
from model_export.sources import torch_convert, torch_files
from model_export.sources.torch import add_torch_args, export_torch, torch_inputs

DENSE_NOTE = ("zeros are stored and multiplied like any other weight: dense kernels do not "
              "get faster and the file does not get smaller from sparsity alone")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prune", help="magnitude-prune a PyTorch model, report, export",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_torch_args(p)
    p.add_argument("--amount", type=float, default=0.5,
                   help="share of weight entries to zero, 0 < amount < 1 (0.5)")
    p.add_argument("--save-state-dict", type=Path, metavar="FILE",
                   help="also save the pruned state dict")
    options.add_rows(p, held_out=True)
    budget.add_args(p, max_abs_error=float("inf"), min_label_agreement=0.95)
    p.set_defaults(func=run)


def magnitude_prune(module: Any, amount: float) -> dict[str, Any]:
    """Zero the ``amount`` smallest-magnitude weight entries model-wide; report sparsity."""
    import torch

    weights = [(n, p) for n, p in module.named_parameters() if p.dim() >= 2]
    if not weights:
        raise InputError(f"{type(module).__name__} has no weight matrices to prune")
    flat = torch.cat([p.detach().abs().reshape(-1) for _, p in weights])
    k = int(amount * flat.numel())
    threshold = torch.kthvalue(flat, k).values if k else flat.new_tensor(-1.0)
    layers = {}
    with torch.no_grad():
        for name, param in weights:
            param.mul_(param.abs() > threshold)
            layers[name] = round(float((param == 0).float().mean()), 4)
    zeros = sum(int((p == 0).sum()) for _, p in weights)
    return {"amount": amount, "method": "global unstructured L1 magnitude",
            "sparsity": round(zeros / flat.numel(), 4), "layer_sparsity": layers,
            "note": DENSE_NOTE}


def _outputs_card(args: argparse.Namespace) -> ModelCard:
    """What ``budget.evaluate`` needs to know of the outputs before the export exists."""
    if args.task == "regression":
        return ModelCard(name="pruned", version="0", task="regression", value_output="value")
    return ModelCard(name="pruned", version="0", labels=args.labels, label_output="label",
                     probability_output="probabilities")


def run(args: argparse.Namespace) -> None:
    if not 0 < args.amount < 1:
        raise InputError(f"--amount {args.amount}: must be between 0 and 1")
    if args.sample_rows is None:  # checked before the (slow) model load
        raise InputError("prune needs held-out rows: --sample-rows FILE (with --target for "
                         "accuracy)")
    loaded = torch_files.load(args.model, args.module, args.module_kwargs)
    specs = torch_inputs(args, loaded)
    source = torch_convert.TorchSource(loaded, args.task, args.head, [s.name for s in specs])
    held = row_files.load(args.sample_rows, [s.tensor_spec() for s in specs], args.feature_names,
                     args.target)
    dense = source.predict(held.feeds)
    report = magnitude_prune(loaded.module, args.amount)
    pruned = source.predict(held.feeds)
    report.update(rows=held.n, rows_origin=held.origin,
                  **budget.evaluate(dense, pruned, _outputs_card(args), held.y, args))
    print(f"pruned {args.amount:.0%} of weights: sparsity {report['sparsity']:.2%} "
          f"({', '.join(f'{k} {v:.0%}' for k, v in report['layer_sparsity'].items())})")
    print("\n".join(budget.summary_lines(report, held.n)))
    print(f"note: {DENSE_NOTE}")
    if not report["passed"]:
        raise BudgetExceeded("pruned model refused, not written: " + "; ".join(report["failures"]))
    if args.save_state_dict:
        import torch

        torch.save(loaded.module.state_dict(), args.save_state_dict)
    export_torch(args, loaded, Tolerance(), [{"kind": "prune", **report}])
