"""Open Inference Protocol inference bodies: request bytes -> feeds, outputs -> response bytes.

Request body: a JSON header, optionally followed by raw tensors (binary tensor data
extension). With ``Inference-Header-Content-Length: n`` the first ``n`` bytes are the JSON
header and the rest are the binary inputs, in input order, each ``binary_data_size`` long.

``decode_request`` checks the request against the model's signature before touching any
data (names, datatypes, ranks, static dims) and raises RequestError (400) naming the input;
values follow codecs.values (a row input's NaN policy is the card's, as on /predict).
``inflate`` undoes a gzip/deflate Content-Encoding first. ``encode_response`` writes
outputs as JSON ``data`` or, when asked (``binary_data`` on an output,
``binary_data_output`` on the request), as raw bytes after the JSON header.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from functions.codecs.json_text import parse_json
from functions.codecs.v2_tensors import from_binary, from_json, to_binary, to_json, v2_datatype
from functions.codecs.values import refused_non_finite
from functions.config.card import TensorSpec
from functions.errors import MalformedJSON, PayloadTooLarge, RequestError, UnsupportedMediaType
from functions.model.onnx_model import OnnxModel
from functions.service import Scored

HEADER_LENGTH = "Inference-Header-Content-Length"
MAX_DIM = 2**31 - 1
"""The largest dimension a shape may give (numpy refuses arrays whose shape multiplies
past its address space, even with another dimension of 0)."""


@dataclass
class InferRequest:
    """A decoded inference request: feeds match the model's inputs by name and signature."""

    feeds: dict[str, np.ndarray]
    outputs: dict[str, bool] = field(default_factory=dict)
    """Requested output name -> send as binary; empty means every output."""
    binary_output: bool = False
    id: str | None = None

    @property
    def rows(self) -> int:
        """The batch size: the first axis of the inputs (1 for a scalar input)."""
        first = next(iter(self.feeds.values()), None)
        return 1 if first is None or not first.ndim else len(first)


def inflate(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body without its Content-Encoding (gzip or zlib "deflate", as tritonclient sends).

    Decompresses at most ``limit`` bytes (413 beyond), so a small bomb cannot fill memory.
    """
    kind = (encoding or "identity").strip().lower()
    if kind == "identity":
        return body
    if kind not in ("gzip", "deflate"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported; "
                                   "use gzip, deflate or none")
    inflater = zlib.decompressobj(31 if kind == "gzip" else 15)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise RequestError(f"body is not valid {kind} data: {exc}") from None
    if len(out) > limit:
        raise PayloadTooLarge(f"the {kind} body inflates past the {limit}-byte limit")
    return out


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """(JSON header, binary section); 400 when the declared header length cannot be right."""
    if header_length is None:
        return body, memoryview(b"")
    if not header_length.strip().isdigit():
        raise RequestError(f"{HEADER_LENGTH} must be a byte count, got {header_length!r}")
    n = int(header_length)
    if n == 0 or n > len(body):
        raise RequestError(f"{HEADER_LENGTH} is {n} but the body is {len(body)} bytes")
    return body[:n], memoryview(body)[n:]


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestError(f"{where} must be a JSON object")
    return value


def _shape(item: dict[str, Any], where: str) -> list[int]:
    shape = item.get("shape")
    if not isinstance(shape, list) or not all(
            (type(d) is int or (type(d) is float and d.is_integer())) and 0 <= d <= MAX_DIM
            for d in shape):
        raise RequestError(f"{where}: 'shape' must be a list of integers from 0 to {MAX_DIM}")
    return [int(d) for d in shape]  # 2.0 is an integer to JSON Schema too


def _check_signature(spec: TensorSpec, datatype: Any, shape: list[int], where: str,
                     width: int | None) -> None:
    want = v2_datatype(spec.dtype)
    if datatype != want:
        raise RequestError(f"{where}: datatype {datatype} does not match the model's {want}")
    dims = [d if isinstance(d, int) else -1 for d in spec.shape]
    if len(shape) != len(dims):
        raise RequestError(f"{where}: shape {shape} has {len(shape)} dims; the model takes {dims}")
    if width is not None and dims[-1] == -1:
        dims[-1] = width  # the card's feature count pins a dynamic row width
    for axis, (got, need) in enumerate(zip(shape, dims)):
        if need >= 0 and got != need:
            raise RequestError(f"{where}: shape {shape} does not fit the model's {dims} "
                               f"(dim {axis} must be {need})")


def decode_request(body: bytes, header_length: str | None, model: OnnxModel) -> InferRequest:
    """Parse, check against ``model`` and decode every input (binary ones without copying)."""
    header, binary = split_body(body, header_length)
    try:
        req = parse_json(header)
    except MalformedJSON as exc:
        if header_length is None:
            raise
        raise RequestError(f"the first {len(header)} bytes ({HEADER_LENGTH}) are not the JSON "
                           f"header: {exc.message}") from None
    if not isinstance(req, dict) or not isinstance(req.get("inputs"), list):
        raise RequestError('the request must be a JSON object with an "inputs" list')
    rid = req.get("id")
    if rid is not None and not isinstance(rid, str):
        raise RequestError("'id' must be a string")
    params = _object(req.get("parameters"), "'parameters'")
    specs = {s.name: s for s in model.inputs}
    row = model.row_input
    may_hold_bools = b"true" in header or b"false" in header
    feeds: dict[str, np.ndarray] = {}
    offset = 0
    for i, item in enumerate(req["inputs"]):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise RequestError(f"inputs[{i}] must be an object with a 'name'")
        name = item["name"]
        where = f"input '{name}' (inputs[{i}])"
        if name not in specs:
            raise RequestError(f"{where}: the model has no such input; it takes {list(specs)}")
        if name in feeds:
            raise RequestError(f"{where}: given twice")
        shape, datatype = _shape(item, where), item.get("datatype")
        width = row.n_features if row is not None and row.name == name else None
        _check_signature(specs[name], datatype, shape, where, width)
        parameters = _object(item.get("parameters"), f"{where} 'parameters'")
        if "binary_data_size" not in parameters:  # present, even as null: binary data
            feeds[name] = from_json(where, datatype, shape, item.get("data"), may_hold_bools)
            continue
        size = parameters["binary_data_size"]
        if header_length is None:
            raise RequestError(f"{where}: binary_data_size needs the binary body (the "
                               f"{HEADER_LENGTH} header and the tensors after the JSON)")
        if type(size) is not int or size < 0 or offset + size > len(binary):
            raise RequestError(f"{where}: binary_data_size {size!r} runs past the "
                               f"{len(binary)} bytes of binary data after the JSON header")
        feeds[name] = from_binary(where, datatype, shape, binary[offset: offset + size])
        offset += size
    if offset != len(binary):
        raise RequestError(f"{len(binary)} bytes follow the JSON header but the inputs' "
                           f"binary_data_size add up to {offset}")
    missing = [n for n in specs if n not in feeds]
    if missing:
        raise RequestError(f"missing inputs {missing}; the model takes {list(specs)}")
    if row is not None:
        _check_finite(model, row.name, feeds[row.name])
    binary_default = _flag(params, "binary_data_output", "'parameters'")
    return InferRequest(feeds, _requested(req.get("outputs"), model, binary_default),
                        binary_default, rid)


def _check_finite(model: OnnxModel, name: str, matrix: np.ndarray) -> None:
    """The card's NaN policy, as /predict applies it, naming the first bad row and feature."""
    bad = refused_non_finite(matrix, model.card.allow_nan)
    if bad is None:
        return
    row, col = bad
    names = model.card.feature_names
    feature = names[col] if col < len(names) else f"column {col}"
    raise RequestError(f"input '{name}' row {row}, {feature}: {matrix[row, col]} is not allowed "
                       "(the model needs finite values)")


def in_request_order(scored: Scored) -> dict[str, np.ndarray]:
    """Every output with its batch axis in request order (rows answered once by dedupe are
    repeated where the request repeated them)."""
    outputs, src = scored.outputs or {}, scored.src
    if src is None:
        return outputs
    rows = scored.rows
    return {name: out[src] if isinstance(out, np.ndarray) and out.ndim and len(out) == rows
            else out for name, out in outputs.items()}


def _flag(params: dict[str, Any], key: str, where: str, default: bool = False) -> bool:
    value = params.get(key, default)
    if type(value) is not bool:
        raise RequestError(f"{where}: {key!r} must be true or false")
    return value


def _requested(outputs: Any, model: OnnxModel, binary_default: bool) -> dict[str, bool]:
    if outputs is None:
        return {}
    if not isinstance(outputs, list):
        raise RequestError("'outputs' must be a list")
    wanted: dict[str, bool] = {}
    for i, item in enumerate(outputs):
        name = item.get("name") if isinstance(item, dict) else None
        if name not in model.output_names:
            raise RequestError(f"outputs[{i}]: the model has no output {name!r}; "
                               f"it has {model.output_names}")
        params = _object(item.get("parameters"), f"output '{name}' 'parameters'")
        if "classification" in params:
            raise RequestError(f"output '{name}': the classification extension is not "
                               "supported; request the output tensor itself")
        wanted[name] = _flag(params, "binary_data", f"output '{name}' 'parameters'",
                             binary_default)
    return wanted


def encode_response(model: OnnxModel, request: InferRequest,
                    results: dict[str, np.ndarray]) -> tuple[bytes, dict[str, str]]:
    """(body, extra headers): the JSON header, then any binary outputs in output order."""
    chosen = request.outputs or dict.fromkeys(model.output_names, request.binary_output)
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, binary in chosen.items():
        arr = results[name]
        if not isinstance(arr, np.ndarray):
            raise RequestError(f"output '{name}' is not a tensor and cannot be sent over the "
                               "Open Inference Protocol; request the other outputs by name")
        datatype = "BYTES" if arr.dtype.kind in "OSU" else v2_datatype(arr.dtype.name)
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
        if binary:
            raw = to_binary(arr)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = to_json(arr)
        entries.append(entry)
    head: dict[str, Any] = {"model_name": model.card.name, "model_version": model.card.version}
    if request.id is not None:
        head["id"] = request.id
    head["outputs"] = entries
    header = orjson.dumps(head, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return header, {}
    return header + b"".join(chunks), {HEADER_LENGTH: str(len(header))}
