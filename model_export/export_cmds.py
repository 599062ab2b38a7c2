"""The ``sklearn`` and ``torch`` subcommands: convert, write model + card, verify parity.

Both end the same way (``finish``): the model and its card are written, the source and the
ONNX model run on sample rows, and the parity report goes into the card. A failed parity
check leaves the files for inspection, marked ``verify.passed: false`` (``publish`` refuses
them), and exits with ParityFailed's code.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import onnx

from functions.card import ModelCard, TensorSpec
from model_export import cards, inputs, options, rows, sklearn_export, torch_export, torch_load
from model_export.errors import InputError
from model_export.parity import Tolerance
from model_export.verify import SourceModel, check_and_record


def finish(proto: onnx.ModelProto, out: Path, card: ModelCard, source: SourceModel,
           args: argparse.Namespace, tol: Tolerance | None = None) -> ModelCard:
    """Write ``proto`` + card to ``out``, verify against ``source`` on the ``args`` rows
    (within ``tol``, default the ``args`` tolerance), record the report."""
    card = cards.write_model(proto, out, card)
    sample = options.sample_rows(args, card, out)
    if args.sample_rows is not None and not card.feature_ranges and len(card.inputs) == 1:
        card.feature_ranges = rows.feature_ranges(sample.X, card.feature_names)
    card = check_and_record(out, card, source, sample, tol or options.tolerance(args))
    print(f"wrote {out} and {cards.card_path(out)} (sha256 {card.sha256})")
    return card


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sklearn", help="scikit-learn estimator/Pipeline (joblib/pickle) to ONNX",
                       description=run_sklearn.__doc__)
    p.add_argument("model", type=Path, help="joblib or pickle file of a fitted estimator")
    options.add_identity(p, "model file")
    options.add_rows(p)
    options.add_tolerance(p)
    p.set_defaults(func=run_sklearn)

    p = sub.add_parser("torch", help="PyTorch module (state dict, TorchScript, "
                       "ExportedProgram) to ONNX", description=run_torch.__doc__)
    add_torch_args(p)
    options.add_rows(p)
    options.add_tolerance(p)
    p.set_defaults(func=run_torch)


def add_torch_args(p: argparse.ArgumentParser) -> None:
    """The model, its loading and its export options (shared with ``prune``)."""
    p.add_argument("model", type=Path, nargs="?",
                   help="state dict (with --module), TorchScript file, or .pt2 ExportedProgram")
    options.add_torch_source(p)
    p.add_argument("--task", choices=("classification", "regression"), default="classification")
    p.add_argument("--head", choices=torch_export.HEADS, default="softmax",
                   help="classifiers: the module returns logits (softmax) or probabilities")
    p.add_argument("--input-shape", type=options.csv_list, metavar="D1,D2,...",
                   help="per-row shape of the one float32 input (default: from the rows, the "
                   "feature names, or the first Linear layer)")
    p.add_argument("--input", action="append", type=inputs.parse, metavar="NAME:DTYPE:SHAPE",
                   help="a graph input, in forward()'s order, repeatable: e.g. "
                   "ids:int64:16:0..29999 (range to draw rows from), x:float32:8, "
                   "image:float32:3,32,32; a named dim (seq) is a dynamic axis")
    options.add_identity(p, "model file")


def run_sklearn(args: argparse.Namespace) -> None:
    """Convert a fitted scikit-learn estimator or Pipeline with skl2onnx: float32 input
    [N, F] with a dynamic batch axis, probabilities as a plain tensor (no ZipMap), feature
    names and class labels carried into the card; then verify parity."""
    est = sklearn_export.load(args.model)
    text = bool(sklearn_export.text_vectorizers(est))
    n_features = None if text else getattr(est, "n_features_in_", None)
    if n_features is None and not text:
        raise InputError(f"{args.model}: cannot tell how many features "
                         f"{type(est).__name__} takes (no n_features_in_)")
    names = (args.feature_names or [str(f) for f in getattr(est, "feature_names_in_", [])]
             or ([sklearn_export.TEXT_FEATURE] if text
                 else [f"x{i}" for i in range(n_features)]))  # type: ignore[arg-type]
    if len(names) != (n_features or 1):
        raise InputError(f"{len(names)} feature names given for {n_features or 1} features")
    out = options.output_path(args, args.model)
    ident = options.card_identity(args, out)
    card = sklearn_export.make_card(est, ident["name"], args.version, names, args.labels,
                                    args.description)
    proto = sklearn_export.convert(est, n_features, args.opset, ident["name"])
    finish(proto, out, card, sklearn_export.SklearnSource(est), args,
           options.tolerance(args, trees=sklearn_export.is_trees(est)))


def run_torch(args: argparse.Namespace) -> None:
    """Export a PyTorch module with torch.onnx (dynamic batch axis, chosen opset); a
    classifier gets probabilities (softmax) and label (argmax) outputs; then verify."""
    loaded = torch_load.load(args.model, args.module, args.module_kwargs)
    export_torch(args, loaded, options.tolerance(args))


def export_torch(args: argparse.Namespace, loaded: torch_load.LoadedModule, tol: Tolerance,
                 variants: list[dict] | None = None) -> ModelCard:
    """Export ``loaded`` as the ``args`` say, verify within ``tol``; ``variants`` go into
    the card (``prune`` records itself there)."""
    specs = torch_inputs(args, loaded)
    source = torch_export.TorchSource(loaded, args.task, args.head, [s.name for s in specs])
    shape = specs[0].dims
    tabular = len(specs) == 1 and len(shape) == 1 and isinstance(shape[0], int)
    names = args.feature_names or ([f"x{i}" for i in range(shape[0])]  # type: ignore[arg-type]
                                   if tabular else [])
    if tabular and len(names) != shape[0]:
        raise InputError(f"{len(names)} feature names given for {shape[0]} features")
    out = options.output_path(args, args.model or Path(args.module.split(":")[-1]))
    ident = options.card_identity(args, out)
    proto = torch_export.export(source, specs, args.opset, ident["name"])
    card = torch_export.make_card(source, proto, ident["name"], args.version, names,
                                  args.labels, args.description)
    card.variants = variants or []
    if inputs.ranges(specs):
        card.extra["input_ranges"] = inputs.ranges(specs)  # where drawn rows come from
    return finish(proto, out, card, source, args, tol)


def torch_inputs(args: argparse.Namespace,
                 loaded: torch_load.LoadedModule) -> list[inputs.InputSpec]:
    """The ``--input`` declarations, or the one float32 ``input`` of ``_row_shape``."""
    if args.input:
        if args.input_shape:
            raise InputError("give --input (every input) or --input-shape (one input), not both")
        inputs.check_unique(args.input)
        return list(args.input)
    return [inputs.InputSpec("input", "float32", _row_shape(args, loaded))]


def _row_shape(args: argparse.Namespace, loaded: torch_load.LoadedModule) -> tuple[int, ...]:
    if args.input_shape:
        try:
            return tuple(int(d) for d in args.input_shape)
        except ValueError as exc:
            raise InputError(f"--input-shape: {exc}") from exc
    if args.sample_rows is not None:
        any_rank = [TensorSpec(name="input", dtype="float32", shape=[])]
        return tuple(rows.load(args.sample_rows, any_rank, args.feature_names,
                               args.target).X.shape[1:])
    if args.feature_names:
        return (len(args.feature_names),)
    shape = torch_load.guess_row_shape(loaded)
    if shape is None:
        raise InputError("cannot tell the input shape: pass --input-shape")
    return shape
