"""The ``torch`` subcommand: a PyTorch module (state dict, TorchScript, ExportedProgram) -> ONNX.

One float32 input by default, or several declared with ``--input NAME:DTYPE:SHAPE``;
loading is ``torch_files``', export ``torch_convert``'s, the end ``write_and_verify``'s.
``prune`` shares the arguments and the export (``add_torch_args``, ``export_torch``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from functions.config.card import ModelCard, TensorSpec
from model_export import options
from model_export.checks.parity import Tolerance
from model_export.exit_codes import InputError
from model_export.samples import row_files
from model_export.sources import declared_inputs, torch_convert, torch_files
from model_export.sources.write_and_verify import write_and_verify


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("torch", help="PyTorch module (state dict, TorchScript, "
                       "ExportedProgram) to ONNX", description=run.__doc__)
    add_torch_args(p)
    options.add_rows(p)
    options.add_tolerance(p)
    p.set_defaults(func=run)


def add_torch_args(p: argparse.ArgumentParser) -> None:
    """The model, its loading and its export options (shared with ``prune``)."""
    p.add_argument("model", type=Path, nargs="?",
                   help="state dict (with --module), TorchScript file, or .pt2 ExportedProgram")
    options.add_torch_source(p)
    p.add_argument("--task", choices=("classification", "regression"), default="classification")
    p.add_argument("--head", choices=torch_convert.HEADS, default="softmax",
                   help="classifiers: the module returns logits (softmax) or probabilities")
    p.add_argument("--input-shape", type=options.csv_list, metavar="D1,D2,...",
                   help="per-row shape of the one float32 input (default: from the rows, the "
                   "feature names, or the first Linear layer)")
    p.add_argument("--input", action="append", type=declared_inputs.parse,
                   metavar="NAME:DTYPE:SHAPE",
                   help="a graph input, in forward()'s order, repeatable: e.g. "
                   "ids:int64:16:0..29999 (range to draw rows from), x:float32:8, "
                   "image:float32:3,32,32; a named dim (seq) is a dynamic axis")
    options.add_identity(p, "model file")


def run(args: argparse.Namespace) -> None:
    """Export a PyTorch module with torch.onnx (dynamic batch axis, chosen opset); a
    classifier gets probabilities (softmax) and label (argmax) outputs; then verify."""
    loaded = torch_files.load(args.model, args.module, args.module_kwargs)
    export_torch(args, loaded, options.tolerance(args))


def export_torch(args: argparse.Namespace, loaded: torch_files.LoadedModule, tol: Tolerance,
                 variants: list[dict] | None = None) -> ModelCard:
    """Export ``loaded`` as the ``args`` say, verify within ``tol``; ``variants`` go into
    the card (``prune`` records itself there)."""
    specs = torch_inputs(args, loaded)
    source = torch_convert.TorchSource(loaded, args.task, args.head, [s.name for s in specs])
    shape = specs[0].dims
    tabular = len(specs) == 1 and len(shape) == 1 and isinstance(shape[0], int)
    names = args.feature_names or ([f"x{i}" for i in range(shape[0])]  # type: ignore[arg-type]
                                   if tabular else [])
    if tabular and len(names) != shape[0]:
        raise InputError(f"{len(names)} feature names given for {shape[0]} features")
    out = options.output_path(args, args.model or Path(args.module.split(":")[-1]))
    ident = options.card_identity(args, out)
    proto = torch_convert.export(source, specs, args.opset, ident["name"])
    card = torch_convert.make_card(source, proto, ident["name"], args.version, names,
                                  args.labels, args.description)
    card.variants = variants or []
    if declared_inputs.ranges(specs):
        card.extra["input_ranges"] = declared_inputs.ranges(specs)  # where drawn rows come from
    return write_and_verify(proto, out, card, source, args, tol)


def torch_inputs(args: argparse.Namespace,
                 loaded: torch_files.LoadedModule) -> list[declared_inputs.DeclaredInput]:
    """The ``--input`` declarations, or the one float32 ``input`` of ``_row_shape``."""
    if args.input:
        if args.input_shape:
            raise InputError("give --input (every input) or --input-shape (one input), not both")
        declared_inputs.check_unique(args.input)
        return list(args.input)
    return [declared_inputs.DeclaredInput("input", "float32", _row_shape(args, loaded))]


def _row_shape(args: argparse.Namespace, loaded: torch_files.LoadedModule) -> tuple[int, ...]:
    if args.input_shape:
        try:
            return tuple(int(d) for d in args.input_shape)
        except ValueError as exc:
            raise InputError(f"--input-shape: {exc}") from exc
    if args.sample_rows is not None:
        any_rank = [TensorSpec(name="input", dtype="float32", shape=[])]
        return tuple(row_files.load(args.sample_rows, any_rank, args.feature_names,
                               args.target).X.shape[1:])
    if args.feature_names:
        return (len(args.feature_names),)
    shape = torch_files.guess_row_shape(loaded)
    if shape is None:
        raise InputError("cannot tell the input shape: pass --input-shape")
    return shape
