"""Model files and their card sidecars: paths, hashes, graph signatures, read and write.

The card schema itself is ``functions.config.card.ModelCard`` (one schema for exporter and server);
this module only knows where the card lives (``X.onnx`` -> ``X.card.json``) and how to fill
the fields that come from the ONNX graph and this machine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import msgspec
import onnx
from onnx import TensorProto, helper

from functions.config.card import ModelCard, TensorSpec, sidecar_card
from model_export.exit_codes import InputError, NotAModel


def card_path(model_path: Path) -> Path:
    """The sidecar of ``X.onnx``: ``X.card.json`` in the same folder, as the function reads."""
    return Path(sidecar_card(str(model_path)))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _spec(value: onnx.ValueInfoProto) -> TensorSpec:
    ttype = value.type.tensor_type
    dims: list[int | str | None] = [
        d.dim_value if d.HasField("dim_value") else None for d in ttype.shape.dim
    ]
    dtype = helper.tensor_dtype_to_np_dtype(ttype.elem_type).name
    if ttype.elem_type == TensorProto.STRING:
        dtype = "str"
    return TensorSpec(name=value.name, dtype=dtype, shape=dims)


def signature(model: onnx.ModelProto) -> tuple[list[TensorSpec], list[TensorSpec], int]:
    """(inputs, outputs, default-domain opset) of a graph; initializers are not inputs."""
    inits = {i.name for i in model.graph.initializer}
    inputs = [_spec(v) for v in model.graph.input if v.name not in inits]
    outputs = [_spec(v) for v in model.graph.output]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return inputs, outputs, opset


def load_onnx(path: Path) -> onnx.ModelProto:
    """Read an ONNX file, or raise NotAModel naming the file."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError, onnx its own: same verdict
        raise NotAModel(f"{path} is not an ONNX model: {exc}") from exc


def read_card(model_path: Path) -> ModelCard:
    """The card beside ``model_path``; InputError when missing or invalid."""
    path = card_path(model_path)
    try:
        return ModelCard.from_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no model card beside {model_path.name}") from exc
    except ValueError as exc:
        raise InputError(f"{path} is not a valid model card: {exc}") from exc


def write_model(model: onnx.ModelProto | bytes, path: Path, card: ModelCard) -> ModelCard:
    """Write the model and its card; the card gets the file's sha256 and signature.

    Returns the card as written. The model is written first, then the card, so a card
    on disk always describes the bytes beside it.
    """
    data = model if isinstance(model, bytes) else model.SerializeToString()
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load_from_string(data)
    inputs, outputs, opset = signature(proto)
    if "packing" in card.extra:  # the graph is fed by the function's adapter: the card
        inputs, outputs = card.inputs, card.outputs  # keeps the padded signature it serves
    card = msgspec.structs.replace(card, sha256=sha256_bytes(data), inputs=inputs,
                                   outputs=outputs, opset=opset)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    write_card(path, card)
    return card


def write_card(model_path: Path, card: ModelCard) -> None:
    """Write the card beside ``model_path``, validated as the function will read it (a
    struct built in code is not: an unsafe ``--name`` is refused here, naming the field)."""
    text = card.to_json()
    try:
        ModelCard.from_json(text)
    except ValueError as exc:
        raise InputError(f"the card of {model_path.name} would not be valid: {exc}") from exc
    card_path(model_path).write_text(text + "\n")


def dist(name: str) -> dict[str, str]:
    """``{"name": name, "version": installed version}`` for the card's framework/converter
    (the module's ``__version__`` when its distribution is named otherwise, e.g. xgboost
    from ``xgboost-cpu``)."""
    import importlib
    from importlib.metadata import PackageNotFoundError, version

    try:
        return {"name": name, "version": version(name)}
    except PackageNotFoundError:
        return {"name": name, "version": str(importlib.import_module(name).__version__)}
