"""``python -m model_export``: the command line, and the one place errors become exit codes.

Each subcommand lives in the module that owns it and registers its own parser
(``register(subparsers)`` setting ``func``). Expected failures (ExportError) print one line
on stderr and exit with their code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from model_export import (
    demo,
    export_cmds,
    gbdt_cmd,
    hf_cmd,
    optimize,
    prune,
    publish,
    quantize,
    verify_cmd,
)
from model_export.errors import ExportError

COMMANDS = (export_cmds, gbdt_cmd, hf_cmd, verify_cmd, optimize, quantize, prune, publish, demo)


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
