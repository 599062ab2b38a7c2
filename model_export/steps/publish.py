"""The ``publish`` subcommand: upload model + card under NAME/VERSION/, never overwriting.

Layout: ``PREFIX/NAME/VERSION/model.onnx`` and ``PREFIX/NAME/VERSION/model.card.json`` (the
card is the model's sidecar, as the function expects), plus every other file the card
lists beside the model under its own name (a text model's tokenizer), each checked against
the sha256 the card gives it, so the function can check it again. Published versions are
immutable: if any object exists the command refuses (exit 7) and uploads nothing. Only a
model whose card describes it (same sha256) and whose parity report passed is published;
the card goes last, so a card in the bucket always has its files. The last line printed
is ``MODEL_URI=...``, ready for the deploy scripts.
"""

from __future__ import annotations

import argparse
import copy
import re
import tempfile
from pathlib import Path

import msgspec

from functions.config.card import ModelCard, sidecar_card
from functions.loading.object_store import sha256_file
from model_export import card_files
from model_export.exit_codes import (
    BudgetExceeded,
    ExportError,
    InputError,
    ParityFailed,
    VersionExists,
)
from model_export.steps import buckets

SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("publish", help="upload model + card to gs:// or s3:// as NAME/VERSION/",
                       description=__doc__)
    p.add_argument("model", type=Path, help="the .onnx file (its card must be beside it)")
    p.add_argument("--to", required=True, metavar="URI",
                   help="gs://BUCKET[/PREFIX] or s3://BUCKET[/PREFIX]")
    p.add_argument("--name", help="default: the card's name")
    p.add_argument("--version", help="default: the card's version")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def listed_files(model: Path, card: ModelCard) -> dict[str, Path]:
    """Files besides the model that the card lists (name -> local path beside ``model``),
    each checked against its sha256 in the card."""
    files: dict[str, Path] = {}
    if card.tokenizer is not None:
        path = model.parent / card.tokenizer.file
        if not path.is_file():
            raise InputError(f"{path}: the card of {model.name} lists this tokenizer; it is "
                             "not beside the model")
        digest = sha256_file(path)
        if card.tokenizer.sha256 and digest != card.tokenizer.sha256:
            raise InputError(f"{path.name}: its sha256 ({digest}) is not the card's "
                             f"({card.tokenizer.sha256})")
        if not card.tokenizer.sha256:
            card.tokenizer.sha256 = digest
        files[card.tokenizer.file] = path
    return files


def check_publishable(model: Path, card: ModelCard) -> None:
    """Refuse a card that does not describe ``model`` or records a failed check."""
    digest = sha256_file(model)
    if card.sha256 != digest:
        raise InputError(f"{model.name}: its card's sha256 ({card.sha256}) is not the file's "
                         f"({digest}); re-export or re-run the step that wrote it")
    if card.verify is None:
        raise ParityFailed(f"{model.name} was never verified: run `python -m model_export "
                           "verify` first")
    if not card.verify.get("passed"):
        raise ParityFailed(f"{model.name} failed its parity check; not publishing it")
    failed = [v.get("kind", "?") for v in card.variants if not v.get("passed", False)]
    if failed:
        raise BudgetExceeded(f"{model.name}: step(s) {', '.join(failed)} failed their budget")


def run(args: argparse.Namespace) -> None:
    card_files.load_onnx(args.model)
    card = card_files.read_card(args.model)
    check_publishable(args.model, card)
    name, version = args.name or card.name, args.version or card.version
    for what, value in (("name", name), ("version", version)):
        if not SEGMENT.match(value):
            raise InputError(f"{what} {value!r}: use letters, digits, '.', '_' and '-'")
    card = msgspec.structs.replace(copy.deepcopy(card), name=name, version=version)
    extra = listed_files(args.model, card)
    store, base_uri = buckets.open_bucket(args.to)
    root = f"{base_uri}/{name}/{version}"
    uris = {"model": f"{root}/model.onnx", "card": sidecar_card(f"{root}/model.onnx"),
            **{f: f"{root}/{f}" for f in extra}}
    try:
        taken = [u.rsplit("/", 1)[1] for u in uris.values() if store.exists(u)]
        if taken:
            raise VersionExists(f"{root}/ already holds {', '.join(taken)}: versions are "
                                "immutable, publish as a new --version")
        with tempfile.TemporaryDirectory() as tmp:
            card_file = Path(tmp) / "model.card.json"
            card_file.write_text(card.to_json() + "\n")
            buckets.upload(store, args.model, uris["model"], "application/octet-stream",
                           args.quiet)
            for file_name, path in extra.items():
                buckets.upload(store, path, uris[file_name], "application/json", args.quiet)
            buckets.upload(store, card_file, uris["card"], "application/json", True)
    except ExportError:
        raise
    except Exception as exc:  # SDK errors differ per cloud; name the URI and the cause
        raise buckets.sdk_error(root, exc) from exc
    print(f"published {name} version {version} to {root}/"
          + (f" (with {', '.join(extra)})" if extra else ""))
    print(f"MODEL_URI={root}/model.onnx")
