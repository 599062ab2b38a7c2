"""The ``verify`` subcommand: re-check an exported model against its source model.

The source's framework comes from the card (``framework.name``); for PyTorch the task,
head and input order come from the card too, so only the file (and ``--module`` for a
state dict) is needed; a Hugging Face model is its directory, a booster its file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from functions.config.card import ModelCard
from model_export import card_files, options
from model_export.checks.source_check import SourceModel, check_and_record
from model_export.exit_codes import InputError
from model_export.sources import (
    gbdt_convert,
    hf_convert,
    sklearn_convert,
    torch_convert,
    torch_files,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="compare an ONNX model with its source model",
                       description=run.__doc__)
    p.add_argument("model", type=Path, help="the .onnx file (its card must be beside it)")
    p.add_argument("--source", type=Path, required=False,
                   help="the source model file (joblib/pickle, state dict, TorchScript, .pt2)")
    options.add_torch_source(p)
    options.add_rows(p)
    options.add_tolerance(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Run the source model and the ONNX model on sample rows (given, or drawn from the
    card's feature ranges), print the parity report, record it in the card, and fail
    (exit 5) when outputs differ beyond the tolerance."""
    model = args.model
    card_files.load_onnx(model)
    card = card_files.read_card(model)
    source = load_source(card, args.source, args.module, args.module_kwargs)
    trees = "trees" in card.framework or card.framework.get("name") in gbdt_convert.FRAMEWORKS
    check_and_record(model, card, source, options.sample_rows(args, card, model),
                     options.tolerance(args, trees))


def load_source(card: ModelCard, path: Path | None, module: str | None,
                module_kwargs: dict) -> SourceModel:
    """The card's source framework, loaded from ``path`` (and ``module`` for state dicts)."""
    framework = card.framework.get("name")
    if framework == "scikit-learn":
        if path is None:
            raise InputError("--source is required: the joblib/pickle file of the estimator")
        return sklearn_convert.SklearnSource(sklearn_convert.load(path))
    if framework == "torch":
        loaded = torch_files.load(path, module, module_kwargs)
        order = card.converter.get("input_order") or ",".join(s.name for s in card.inputs)
        return torch_convert.TorchSource(loaded, card.task, card.converter.get("head", "softmax"),
                                        order.split(","))
    if framework in gbdt_convert.FRAMEWORKS:
        if path is None:
            raise InputError(f"--source is required: the {framework} booster file")
        return gbdt_convert.BoosterSource(gbdt_convert.load_booster(path))
    if framework == "transformers":
        if path is None:
            raise InputError("--source is required: the Hugging Face model directory")
        return hf_convert.source_for_card(path, card)
    raise InputError(f"card says framework {framework!r}; verify knows scikit-learn, torch, "
                     f"{', '.join(gbdt_convert.FRAMEWORKS)} and transformers")
