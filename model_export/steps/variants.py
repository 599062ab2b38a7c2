"""Writing a derived model (optimised, quantised, pruned) with a card that says so.

A variant's card is its parent's card with the new file's sha256 and signature, and one
more entry in ``variants``: what was done, with which settings, and the step's report.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import msgspec
import onnx

from functions.config.card import ModelCard
from model_export import card_files
from model_export.exit_codes import InputError


def default_out(model: Path, tag: str) -> Path:
    """``X.onnx`` -> ``X.<tag>.onnx``."""
    return model.with_name(model.name.removesuffix(".onnx") + f".{tag}.onnx")


def out_path(args: argparse.Namespace, tag: str) -> Path:
    out: Path = args.out or default_out(args.model, tag)
    if out.suffix != ".onnx":
        raise InputError(f"--out {out}: the model file must end in .onnx")
    if out.resolve() == args.model.resolve():
        raise InputError(f"--out {out} would overwrite the model it is derived from")
    return out


def write(model: onnx.ModelProto | bytes, out: Path, parent: ModelCard, kind: str,
          report: dict[str, Any]) -> ModelCard:
    """Write the variant and its card; ``report`` must say ``passed``."""
    step = {"kind": kind, "parent_sha256": parent.sha256, "created_at": card_files.now_iso(),
            **report}
    card = msgspec.structs.replace(parent, variants=[*parent.variants, step])
    return card_files.write_model(model, out, card)
