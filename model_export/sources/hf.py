"""The ``hf`` subcommand: a local Hugging Face text model -> ONNX + tokenizer + card, verified.

The tokenizer is written beside the model as ``NAME.tokenizer.json`` (padding to the
longest text of a batch, truncation at the card's ``max_length``) and described in the
card's ``tokenizer`` with its sha256; ``publish`` uploads it with the model. Parity is
checked on sample sentences (built in, or ``--sample-rows`` .txt/.csv) tokenised by that
very file: embeddings or probabilities against the ``transformers`` model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from functions.config.card import ModelCard, TokenizerSpec
from model_export import card_files, graph_edits, options
from model_export.exit_codes import InputError
from model_export.samples import drawn, tokenizer_file
from model_export.samples.row_files import Feeds
from model_export.sources import hf_convert, hf_files, hf_packed
from model_export.sources.torch_convert import export
from model_export.sources.write_and_verify import write_and_verify


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hf", help="local Hugging Face text model (embeddings or classifier) "
                       "to ONNX + tokenizer", description=__doc__)
    p.add_argument("model", type=Path, help="the model directory (config.json, weights, "
                   "tokenizer files); read offline, nothing is downloaded")
    p.add_argument("--task", choices=hf_files.TASKS, required=True)
    p.add_argument("--pooling", choices=("mean", "cls"),
                   help="embeddings: pooling in the graph (default: the sentence-transformers "
                   "files, else mean)")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                   help="embeddings: L2-normalise in the graph (default: as the "
                   "sentence-transformers files say, else no)")
    p.add_argument("--shortened-embeddings", action="store_true",
                   help="embeddings: the model was trained for shortened embeddings "
                   "(Matryoshka); the card says so, and the OpenAI route honours dimensions")
    p.add_argument("--packed", action=argparse.BooleanOptionalAction, default=None,
                   help="a graph that takes several texts a row, no padding, the function "
                   "packing each call (default: on for BERT embedding models, where it is "
                   "faster on CPU; see docs/model_export.md); --no-packed: the padded graph")
    p.add_argument("--max-length", type=int, metavar="TOKENS",
                   help="truncate texts at this many tokens (default: the model's own limit)")
    options.add_identity(p, "model directory")
    options.add_rows(p)
    p.set_defaults(rows=len(drawn.SAMPLE_TEXTS))
    options.add_tolerance(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Export, write the tokenizer and card, verify against transformers."""
    hf = hf_files.load(args.model, args.task)
    embedding = args.task == "feature-extraction"
    st = hf.sentence
    pooling = args.pooling or st.pooling or "mean"
    normalize = args.normalize if args.normalize is not None else bool(st.normalize)
    out = options.output_path(args, Path(args.model.resolve().name + ".onnx"))
    ident = options.card_identity(args, out)
    length = hf_files.max_length(hf, args.max_length)
    use_packed = args.packed or (args.packed is None and hf_packed.applies(hf, args.task))
    if use_packed:
        hf_packed.check(hf, args.task)  # refused before anything is written
    tok_file = out.with_name(out.name.removesuffix(".onnx") + ".tokenizer.json")
    tok = hf.tokenizer
    digest = tokenizer_file.write(tok.backend_tokenizer, tok_file, length,
                                  tok.pad_token_id or 0, tok.pad_token or "[PAD]")
    source = hf_convert.source(hf, args.task, pooling, normalize)
    packed: dict = {}
    if use_packed:
        print("packed graph: several texts a row, the function packs each call "
              "(--no-packed: the padded graph)")
        proto = hf_packed.export(hf, args.opset, ident["name"])
        packed = hf_packed.card_fields(hf, pooling, normalize)
    else:
        proto = export(source, hf_convert.specs(hf), args.opset, ident["name"],
                       _trace_feeds(hf, tok_file))
    if embedding and not packed:  # the exporter leaves the width unknown; the card says it
        graph_edits.set_output_dims(proto, "embedding", ["batch", int(hf.config.hidden_size)])
    fields = (_embedding_fields(hf, pooling, normalize, st, packed.get("packing"))
              if embedding else _classifier_fields(hf, args.labels))
    card = ModelCard(
        name=ident["name"], version=args.version, description=args.description,
        created_at=card_files.now_iso(), task="embedding" if embedding else "classification",
        framework={**card_files.dist("transformers"), "model_type": str(hf.config.model_type),
                   "architecture": type(hf.model).__name__,
                   "num_heads": str(hf.config.num_attention_heads),
                   "hidden_size": str(hf.config.hidden_size)},
        converter={"name": "torch.onnx", "version": card_files.dist("torch")["version"],
                   "exporter": "torchscript", "source_kind": "hf",
                   "input_order": ",".join(hf.input_names)},
        shortened_embeddings=True if embedding and args.shortened_embeddings else None,
        tokenizer=TokenizerSpec(
            file=tok_file.name, sha256=digest, max_length=length,
            input_names={n: n for n in hf.input_names}, pooling="none", normalize=False,
            extra={"special_tokens": {k: str(v) for k, v in tok.special_tokens_map.items()},
                   "pad_token_id": tok.pad_token_id or 0}),
        inputs=packed.get("served_inputs", []), outputs=packed.get("served_outputs", []),
        **fields)
    write_and_verify(proto, out, card, source, args)
    print(f"wrote {tok_file} (sha256 {digest}), the tokenizer the card names")


def _trace_feeds(hf: hf_files.HfModel, tok_file: Path) -> Feeds:
    """Two sample texts of different lengths (padding and mask exercised in the trace)."""
    probe = ModelCard(name="probe", version="0", inputs=[s.tensor_spec() for s in
                                                          hf_convert.specs(hf)],
                      tokenizer=TokenizerSpec(file=tok_file.name,
                                              input_names={n: n for n in hf.input_names}))
    encode = tokenizer_file.encoder(probe, tok_file)
    assert encode is not None  # the probe card names a tokenizer
    return encode([drawn.SAMPLE_TEXTS[1], drawn.SAMPLE_TEXTS[7]])


def _embedding_fields(hf: hf_files.HfModel, pooling: str, normalize: bool,
                      st: hf_files.SentenceSettings, packing: dict | None = None) -> dict:
    """The card's embedding fields; ``packing``: a packed graph's ``extra["packing"]``."""
    where = ", ".join(st.found) if st.found else "command line / defaults"
    done = "(by the function, after each packed call)" if packing else "(in the graph)"
    extra = {"embedding": {"pooling": pooling, "normalized": normalize,
                           "dimension": int(hf.config.hidden_size), "settings_from": where}}
    return {"embedding_output": "embedding",
            "output_meaning": f"embedding: {pooling} pooling of the last hidden state"
                              + (", L2-normalised" if normalize else "") + f" {done}",
            "extra": extra if packing is None else {**extra, "packing": packing}}


def _classifier_fields(hf: hf_files.HfModel, given: list[str] | None) -> dict:
    names = given or hf_convert.labels(hf)
    if len(names) != int(hf.config.num_labels):
        raise InputError(f"{len(names)} labels given for {hf.config.num_labels} classes")
    return {"labels": names, "label_output": "label", "probability_output": "probabilities",
            "output_meaning": "label: index into labels (argmax); probabilities: softmax "
                              "of the logits"}
