"""The end every export shares: write the model and its card, then check it against its source.

The model and its card are written, the source and the ONNX model run on sample rows, and
the parity report goes into the card. A failed check leaves the files for inspection,
marked ``verify.passed: false`` (``publish`` refuses them), and raises ParityFailed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import onnx

from functions.config.card import ModelCard
from model_export import card_files, options
from model_export.checks.parity import Tolerance
from model_export.checks.source_check import SourceModel, check_and_record
from model_export.samples import row_files


def write_and_verify(proto: onnx.ModelProto, out: Path, card: ModelCard, source: SourceModel,
                     args: argparse.Namespace, tol: Tolerance | None = None) -> ModelCard:
    """Write ``proto`` + card to ``out``, verify against ``source`` on the ``args`` rows
    (within ``tol``, default the ``args`` tolerance), record the report in the card."""
    card = card_files.write_model(proto, out, card)
    sample = options.sample_rows(args, card, out)
    if args.sample_rows is not None and not card.feature_ranges and len(card.inputs) == 1:
        card.feature_ranges = row_files.feature_ranges(sample.X, card.feature_names)
    card = check_and_record(out, card, source, sample, tol or options.tolerance(args))
    print(f"wrote {out} and {card_files.card_path(out)} (sha256 {card.sha256})")
    return card
