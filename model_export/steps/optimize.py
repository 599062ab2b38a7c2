"""The ``optimize`` subcommand: onnxruntime graph optimisations applied once, offline.

onnxruntime rewrites the graph (constant folding, node fusions) every time a session is
created, i.e. at every cold start. Saving the optimised graph lets the function load it
with optimisations off: the card records the step, and the function skips the
optimisation when a card's last step is ``optimize`` (or with ``OPTIMIZED_MODEL=true``).
A model exported by ``hf`` is offered onnxruntime's transformer fusions first
(``transformer_fusions``). They are not always faster: on a 2-vCPU AMD EPYC (AVX-512) the
fused all-MiniLM-L6-v2 ran a batch of 32 about 15% slower than the plain graph (its
``SkipLayerNormalization`` kernel alone took three times the ``Add`` and
``LayerNormalization`` it replaces). So ``--fusions auto`` (the default) times both graphs
on the sample rows and keeps the fused one only if it is not slower at the batch; ``on``
and ``off`` decide without timing. The timing is this machine's: a different serving CPU
may rank them differently (the card records both figures). The default level is ``extended``:
``all`` adds layout rewrites tied to this machine's CPU, which a different serverless
host may not share. The report times session creation before (original graph, default
level ``all``, as the function would) and after (optimised graph, optimisations off) on
this machine, and checks the optimised graph still answers what the original answers.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from functions.config.card import ModelCard
from model_export import card_files, options
from model_export.checks import onnx_runs
from model_export.checks.parity import compare
from model_export.exit_codes import ParityFailed
from model_export.progress import note
from model_export.samples.row_files import Rows
from model_export.steps import transformer_fusions, variants


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("optimize", help="apply onnxruntime graph optimisations offline",
                       description=__doc__)
    p.add_argument("model", type=Path, help="the .onnx file (its card must be beside it)")
    p.add_argument("--out", type=Path, help="default: MODEL.opt.onnx")
    p.add_argument("--level", choices=("basic", "extended", "all"), default="extended")
    p.add_argument("--repeat", type=int, default=10,
                   help="session creations (and batches) timed for each median (default 10)")
    p.add_argument("--fusions", choices=("auto", "on", "off"), default="auto",
                   help="transformer fusions of an hf export: kept when faster here (auto, "
                   "the default), always, or never")
    options.add_rows(p)
    options.add_tolerance(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    card_files.load_onnx(args.model)
    card = card_files.read_card(args.model)
    out = variants.out_path(args, "opt")
    sample = options.sample_rows(args, card, args.model)
    fusions: dict | None = None
    with tempfile.TemporaryDirectory() as tmp:
        optimised = Path(tmp) / "model.onnx"
        onnx_runs.session(args.model, args.level, save_to=optimised)
        data = optimised.read_bytes()
        if transformer_fusions.applies(card) and args.fusions == "off":
            fusions = {"found": {}, "kept": False, "why": "--fusions off"}
        elif transformer_fusions.applies(card):
            note("applying onnxruntime's transformer fusions")
            fused_path = Path(tmp) / "fused.onnx"
            found = transformer_fusions.fuse(args.model, card, fused_path)
            onnx_runs.session(fused_path, args.level, save_to=optimised)
            fused = optimised.read_bytes()
            fusions = {"found": found, **_choose(args, fused, data, sample, card)}
            data = fused if fusions["kept"] else data
        note(f"timing session creation ({args.repeat} times each)")
        optimised.write_bytes(data)
        before = onnx_runs.session_ms(args.model, "all", args.repeat)
        after = onnx_runs.session_ms(optimised, "disabled", args.repeat)
    ref = onnx_runs.ExportedOnnx(args.model, card=card).predict(sample.feeds)
    got = onnx_runs.ExportedOnnx(data, level="disabled", card=card).predict(sample.feeds)
    parity = compare(ref, got, card, options.tolerance(args))
    report = {"level": args.level, "session_ms_before": before, "session_ms_after": after,
              "size_bytes_before": args.model.stat().st_size, "size_bytes_after": len(data),
              "passed": parity["passed"], "parity": parity}
    if fusions is not None:
        report["transformer_fusions"] = fusions
        print(_fusions_line(fusions))
    print(f"session creation: {before:.2f} ms (original, level all) -> {after:.2f} ms "
          f"(optimised at level {args.level}, loaded with optimisations off); "
          f"median of {args.repeat} on this machine")
    if not parity["passed"]:
        raise ParityFailed("the optimised graph answers differently: "
                           + "; ".join(parity["failures"]))
    card = variants.write(data, out, card, "optimize", report)
    print(f"wrote {out} and {card_files.card_path(out)}; its card records the step, so the "
          "function loads it with graph optimisation off")


TIMED_ROWS = 32
"""Rows in the batch the fusions are timed on (the call size the function's batcher and
length-sorted calls reach under load)."""


def _choose(args: argparse.Namespace, fused: bytes, plain: bytes, sample: Rows,
            card: ModelCard) -> dict[str, object]:
    """Whether to keep the fused graph, with the timings behind the choice: the median of
    a batch of up to ``TIMED_ROWS`` sample rows and of one row, both graphs loaded as the
    function loads an optimised graph, timed in alternation so drift hits both alike."""
    if args.fusions == "on":
        return {"kept": True, "why": "--fusions on"}
    feeds = sample.feeds
    batch = {k: v[:TIMED_ROWS] for k, v in feeds.items()}
    one = {k: v[:1] for k, v in feeds.items()}
    models = {"fused": onnx_runs.ExportedOnnx(fused, level="disabled", card=card),
              "plain": onnx_runs.ExportedOnnx(plain, level="disabled", card=card)}
    times: dict[str, dict[str, list[float]]] = {m: {"batch": [], "one": []} for m in models}
    for model in models.values():  # warm once; each turn then times one call of each
        model.predict(batch)
    for turn in range(max(3, args.repeat)):
        for name in (("fused", "plain") if turn % 2 == 0 else ("plain", "fused")):
            for kind, feeds_ in (("batch", batch), ("one", one)):
                times[name][kind].append(onnx_runs.median_ms(
                    lambda m=models[name], f=feeds_: m.predict(f), 1, warmup=0))
    ms = {f"{m}_{k}_ms": round(statistics.median(v), 3)
          for m, by in times.items() for k, v in by.items()}
    kept = ms["fused_batch_ms"] <= ms["plain_batch_ms"]
    return {"kept": kept, "rows_timed": len(next(iter(batch.values()))), **ms,
            "why": "faster on this machine" if kept else "slower on this machine"}


def _fusions_line(f: dict) -> str:
    if f["why"] == "--fusions off":
        return "transformer fusions: not tried (--fusions off)"
    found = ", ".join(f"{k} x{v}" for k, v in f["found"].items()) or "none applied"
    line = f"transformer fusions: {found}"
    if "fused_batch_ms" not in f:
        return f"{line}; kept ({f['why']})"
    return (f"{line}; batch of {f['rows_timed']}: {f['fused_batch_ms']:.2f} ms fused, "
            f"{f['plain_batch_ms']:.2f} ms without; 1 row: {f['fused_one_ms']:.2f} ms fused, "
            f"{f['plain_one_ms']:.2f} ms without; "
            + ("kept" if f["kept"] else "not kept") + f" ({f['why']})")
