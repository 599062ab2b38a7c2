"""``python -m model_export``: the command line, and the one place errors become exit codes.

Each subcommand is the module of its name, in ``sources/`` (a framework's model -> ONNX) or
``steps/`` (an operation on an exported model), and registers its own parser
(``register(subparsers)`` setting ``func``). Expected failures (ExportError) print one line
on stderr and exit with their code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from model_export.exit_codes import ExportError
from model_export.sources import demo, gbdt, hf, sklearn, torch
from model_export.steps import optimize, prune, publish, quantize, verify

COMMANDS = (sklearn, torch, gbdt, hf, verify, optimize, quantize, prune, publish, demo)
"""Each module is the subcommand of its name; the order is ``--help``'s."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m model_export",
        description="Turn scikit-learn, LightGBM/XGBoost, PyTorch and Hugging Face models "
                    "into verified, optimised ONNX files with a model card, and publish them "
                    "where the function reads.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ExportError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
