"""Argument groups that several subcommands share, and what they turn into.

One definition per option: the model identity (``--name``/``--version``), the sample rows
(``--sample-rows``/``--target``/``--rows``), the parity tolerance, and the PyTorch source
(``--module``/``--module-kwargs``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from functions.config.card import ModelCard
from model_export.checks.parity import Tolerance
from model_export.exit_codes import InputError
from model_export.samples import drawn, row_files, tokenizer_file
from model_export.sources import gbdt_convert

DEFAULT_OPSET = 17


def csv_list(text: str) -> list[str]:
    """``a,b,c`` -> ["a", "b", "c"] (argparse type)."""
    return [t.strip() for t in text.split(",") if t.strip()]


def add_identity(p: argparse.ArgumentParser, what: str) -> None:
    g = p.add_argument_group("model identity")
    g.add_argument("--out", type=Path, help=f"ONNX file to write (default: the {what} "
                   "with .onnx suffix); the card goes beside it as NAME.card.json")
    g.add_argument("--name", help="model name in the card (default: the output file's stem)")
    g.add_argument("--version", default="1", help="model version in the card (default: 1)")
    g.add_argument("--description", help="free text for the card")
    g.add_argument("--feature-names", type=csv_list, metavar="A,B,...",
                   help="input column names, in order")
    g.add_argument("--labels", type=csv_list, metavar="A,B,...",
                   help="class names, in the order of the probability columns")
    g.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset (default {DEFAULT_OPSET})")


def add_rows(p: argparse.ArgumentParser, held_out: bool = False) -> None:
    g = p.add_argument_group("rows" if not held_out else "held-out rows")
    g.add_argument("--sample-rows", type=Path, metavar="FILE",
                   help="rows to run: .csv with header, .txt (one text per line), .npy, or "
                   ".npz (an array per input name, or X; and y)"
                   + ("; targets give accuracy" if held_out else
                      "; default: drawn from the card's feature ranges"))
    g.add_argument("--target", metavar="COLUMN",
                   help="CSV column holding the true label/value (not a feature)")
    g.add_argument("--rows", type=int, default=256, metavar="N",
                   help="rows to draw when no --sample-rows is given (default 256)")
    g.add_argument("--seed", type=int, default=0, help="seed for drawn rows (default 0)")


def add_tolerance(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("parity tolerance")
    g.add_argument("--atol", type=float, default=1e-4, help="absolute tolerance (1e-4)")
    g.add_argument("--rtol", type=float, default=1e-3, help="relative tolerance (1e-3)")
    g.add_argument("--min-label-agreement", type=float, metavar="SHARE",
                   help="least share of rows whose labels must agree (ties excused; default "
                   f"1.0, gradient-boosted trees {1 - gbdt_convert.OUTLIER_SHARE:g})")
    g.add_argument("--outlier-share", type=float, metavar="SHARE",
                   help="share of output values allowed beyond atol/rtol (default 0, "
                   f"gradient-boosted trees {gbdt_convert.OUTLIER_SHARE:g}: a value on a float32 "
                   "threshold can take the other branch)")


def add_torch_source(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("PyTorch source")
    g.add_argument("--module", metavar="PKG.MOD:CLASS",
                   help="the nn.Module class (or FILE.py:CLASS) the state dict belongs to")
    g.add_argument("--module-kwargs", type=json.loads, default={}, metavar="JSON",
                   help="keyword arguments for the class, as a JSON object")


def tolerance(args: argparse.Namespace, trees: bool = False) -> Tolerance:
    """The ``args`` tolerance; ``trees`` sets the defaults for gradient-boosted trees."""
    share = gbdt_convert.OUTLIER_SHARE if trees else 0.0
    agreement = args.min_label_agreement
    outliers = args.outlier_share
    return Tolerance(args.atol, args.rtol, 1.0 - share if agreement is None else agreement,
                     max_outlier_share=share if outliers is None else outliers)


def sample_rows(args: argparse.Namespace, card: ModelCard, model: Path) -> row_files.Rows:
    """The ``--sample-rows`` file, or ``--rows`` rows drawn from the card, as feeds for
    every input of ``model`` (texts through the tokenizer beside it, if the card has one)."""
    encode = tokenizer_file.encoder(card, model)
    if args.sample_rows is not None:
        return row_files.load(args.sample_rows, card.inputs, card.feature_names, args.target,
                         encode)
    if args.rows < 1:
        raise InputError("--rows must be at least 1")
    return drawn.draw(card, args.rows, args.seed, encode)


def output_path(args: argparse.Namespace, source: Path) -> Path:
    out: Path = args.out or source.with_suffix(".onnx")
    if out.suffix != ".onnx":
        raise InputError(f"--out {out}: the model file must end in .onnx")
    return out


def card_identity(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    return {"name": args.name or out.stem, "version": args.version,
            "description": args.description}
