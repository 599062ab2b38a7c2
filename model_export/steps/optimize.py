"""The ``optimize`` subcommand: onnxruntime graph optimisations applied once, offline.

onnxruntime rewrites the graph (constant folding, node fusions) every time a session is
created, i.e. at every cold start. Saving the optimised graph lets the function load it
with optimisations off: the card records the step, and the function skips the
optimisation when a card's last step is ``optimize`` (or with ``OPTIMIZED_MODEL=true``).
A model exported by ``hf`` gets onnxruntime's transformer fusions first (``transformer_fusions``).
The default level is ``extended``:
``all`` adds layout rewrites tied to this machine's CPU, which a different serverless
host may not share. The report times session creation before (original graph, default
level ``all``, as the function would) and after (optimised graph, optimisations off) on
this machine, and checks the optimised graph still answers what the original answers.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from model_export import card_files, options
from model_export.checks import onnx_runs
from model_export.checks.parity import compare
from model_export.exit_codes import ParityFailed
from model_export.progress import note
from model_export.steps import transformer_fusions, variants


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("optimize", help="apply onnxruntime graph optimisations offline",
                       description=__doc__)
    p.add_argument("model", type=Path, help="the .onnx file (its card must be beside it)")
    p.add_argument("--out", type=Path, help="default: MODEL.opt.onnx")
    p.add_argument("--level", choices=("basic", "extended", "all"), default="extended")
    p.add_argument("--repeat", type=int, default=10,
                   help="session creations timed for each median (default 10)")
    options.add_rows(p)
    options.add_tolerance(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    card_files.load_onnx(args.model)
    card = card_files.read_card(args.model)
    out = variants.out_path(args, "opt")
    fused: dict[str, int] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        optimised, start = Path(tmp) / "model.onnx", args.model
        if transformer_fusions.applies(card):
            start = Path(tmp) / "fused.onnx"
            note("applying onnxruntime's transformer fusions")
            fused = transformer_fusions.fuse(args.model, card, start)
        onnx_runs.session(start, args.level, save_to=optimised)
        data = optimised.read_bytes()
        note(f"timing session creation ({args.repeat} times each)")
        before = onnx_runs.session_ms(args.model, "all", args.repeat)
        after = onnx_runs.session_ms(optimised, "disabled", args.repeat)
    sample = options.sample_rows(args, card, args.model)
    ref = onnx_runs.ExportedOnnx(args.model).predict(sample.feeds)
    got = onnx_runs.ExportedOnnx(data, level="disabled").predict(sample.feeds)
    parity = compare(ref, got, card, options.tolerance(args))
    report = {"level": args.level, "session_ms_before": before, "session_ms_after": after,
              "size_bytes_before": args.model.stat().st_size, "size_bytes_after": len(data),
              "passed": parity["passed"], "parity": parity}
    if fused is not None:
        report["transformer_fusions"] = fused
        print("transformer fusions: " + (", ".join(f"{k} x{v}" for k, v in fused.items())
                                         or "none applied"))
    print(f"session creation: {before:.2f} ms (original, level all) -> {after:.2f} ms "
          f"(optimised at level {args.level}, loaded with optimisations off); "
          f"median of {args.repeat} on this machine")
    if not parity["passed"]:
        raise ParityFailed("the optimised graph answers differently: "
                           + "; ".join(parity["failures"]))
    card = variants.write(data, out, card, "optimize", report)
    print(f"wrote {out} and {card_files.card_path(out)}; its card records the step, so the "
          "function loads it with graph optimisation off")
