"""Hand-built /v2 requests for what the Triton client never sends, to the real app in
process (tests/inprocess.py; the Triton client itself talks to a socket in test_oip_client).

Two functions serve here: the bundled iris model (row-shaped input: the core's path) and a
small multi-input model built below (INT64, BOOL, BYTES and FP16 inputs, fed as they are).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.inprocess import InProcess, start_in_process

HLEN = "Inference-Header-Content-Length"
TYPED_INPUTS = [("ids", TensorProto.INT64, [None, 2]), ("flags", TensorProto.BOOL, [None]),
                ("words", TensorProto.STRING, [None]), ("half", TensorProto.FLOAT16, [None, 3])]


def _typed_model(directory: Path) -> Path:
    """A graph echoing four inputs of four datatypes (Identity each), plus its card."""
    nodes, inputs, outputs = [], [], []
    for name, dtype, shape in TYPED_INPUTS:
        inputs.append(helper.make_tensor_value_info(name, dtype, shape))
        outputs.append(helper.make_tensor_value_info(f"{name}_out", dtype, shape))
        nodes.append(helper.make_node("Identity", [name], [f"{name}_out"]))
    graph = helper.make_graph(nodes, "typed", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    path = directory / "typed.onnx"
    onnx.save(model, path)
    card = {"name": "typed", "version": "3", "task": "regression",
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    (directory / "typed.card.json").write_text(json.dumps(card))
    return path


@pytest.fixture(scope="module")
def typed_function(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    tmp = tmp_path_factory.mktemp("typed")
    served = start_in_process({"MODEL_URI": str(_typed_model(tmp)), "MAX_BODY_BYTES": "65536"}, tmp)
    yield served
    served.stop()


def infer(fn: InProcess, header: dict[str, Any], binary: bytes = b"", model: str = "iris",
          header_length: int | str | None = None) -> Any:
    """POST a JSON header plus raw tensors, as the binary tensor data extension lays them out."""
    head = json.dumps(header).encode()
    headers = {"Content-Type": "application/octet-stream" if binary else "application/json"}
    if binary or header_length is not None:
        headers[HLEN] = str(len(head) if header_length is None else header_length)
    return fn.post(f"/v2/models/{model}/infer", data=head + binary, headers=headers)


def fp32(data: Any, shape: list[int], **extra: Any) -> dict[str, Any]:
    return {"name": "input", "datatype": "FP32", "shape": shape, "data": data, **extra}


def error_of(resp: Any, status: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and isinstance(body["error"], str)
    return body["error"]


def test_nested_and_flat_data_give_the_same_answer(demo_app: InProcess) -> None:
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    flat = infer(demo_app, {"inputs": [fp32(sum(rows, []), [2, 4])]})
    nested = infer(demo_app, {"id": "n", "inputs": [fp32(rows, [2, 4])],
                                   "parameters": {"custom": 1}})
    assert flat.status_code == nested.status_code == 200, nested.text
    assert flat.json()["outputs"] == nested.json()["outputs"]
    assert nested.json()["id"] == "n" and "id" not in flat.json()
    label = next(o for o in flat.json()["outputs"] if o["name"] == "label")
    assert label == {"name": "label", "datatype": "INT64", "shape": [2], "data": [0, 2]}


def test_optional_fields_sent_as_null_are_absent_as_the_document_says(
        demo_app: InProcess) -> None:
    import jsonschema

    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    plain = infer(demo_app, {"inputs": [fp32(rows, [2, 4])]})
    body = {"id": None, "parameters": None, "outputs": None,
            "inputs": [fp32(rows, [2, 4], parameters=None)]}
    nulls = infer(demo_app, body)
    assert plain.status_code == nulls.status_code == 200, nulls.text
    assert nulls.json() == plain.json()
    doc = demo_app.get("/openapi.json").json()
    schema = doc["paths"]["/v2/models/{model_name}/infer"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    jsonschema.validate(body, {**schema, "components": doc["components"]})
    with pytest.raises(jsonschema.ValidationError):  # a value of another type is refused
        jsonschema.validate({**body, "outputs": 5}, {**schema, "components": doc["components"]})
    assert "'outputs' must be a list" in error_of(infer(demo_app, {**body, "outputs": 5}), 400)


def test_duplicate_rows_go_through_the_core_dedupe(demo_app: InProcess) -> None:
    def model_rows() -> float:
        text = demo_app.get("/metrics").text
        return float(next(ln.split()[1] for ln in text.splitlines()
                          if ln.startswith("predict_model_rows_total")))

    before = model_rows()
    rows = np.tile(np.array([[5.1, 3.5, 1.4, 0.2], [6.0, 2.2, 5.0, 1.5]], np.float32), (50, 1))
    resp = infer(demo_app, {"inputs": [fp32(None, [100, 4], parameters={
        "binary_data_size": rows.nbytes})], "parameters": {"binary_data_output": True}},
        rows.tobytes())
    assert resp.status_code == 200, resp.text
    head_len = int(resp.headers[HLEN])
    header = json.loads(resp.content[:head_len])
    labels = np.frombuffer(resp.content[head_len: head_len + 800], dtype="<i8")
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 800}
    assert labels.tolist() == [0, 2] * 50  # request order restored after dedupe
    assert model_rows() - before == 2


@pytest.mark.parametrize(("header_length", "needle"), [
    (10_000, "Inference-Header-Content-Length is 10000 but the body is"),
    (20, "the first 20 bytes (Inference-Header-Content-Length) are not the JSON header"),
    ("lots", "must be a byte count"),
])
def test_a_lying_header_length_is_a_400(demo_app: InProcess, header_length: Any,
                                        needle: str) -> None:
    raw = np.ones((1, 4), np.float32).tobytes()
    header = {"inputs": [fp32(None, [1, 4], parameters={"binary_data_size": 16})]}
    assert needle in error_of(infer(demo_app, header, raw, header_length=header_length), 400)


@pytest.mark.parametrize(("inputs", "raw", "needle"), [
    ([fp32(None, [2, 4], parameters={"binary_data_size": 16})], bytes(16),
     "binary_data_size is 16 bytes but shape [2, 4] of FP32 needs 32"),
    ([fp32(None, [1, 4], parameters={"binary_data_size": 16})], bytes(20),
     "20 bytes follow the JSON header but the inputs' binary_data_size add up to 16"),
    ([fp32(None, [1, 4], parameters={"binary_data_size": 32})], bytes(16), "runs past the 16"),
    ([fp32([1, 2, 3], [1, 4])], b"", "shape [1, 4] holds 4 elements but 'data' has 3"),
    ([fp32([1, 2, 3, 4], [1, 4], parameters={"binary_data_size": None})], b"",
     "binary_data_size needs the binary body"),  # present as null: not a JSON tensor
    ([fp32([[1, 2], [3]], [1, 4])], b"", "'data' is ragged"),
    ([fp32([1, True, 3, 4], [1, 4])], b"", "FP32 cannot hold booleans"),
    ([fp32([[1, 2], [3, False]], [1, 4])], b"", "FP32 cannot hold booleans"),
    ([fp32(["1", "2", "3", "4"], [1, 4])], b"", "FP32 cannot hold strings"),
    ([fp32([1, None, 3, 4], [1, 4])], b"", "FP32 cannot hold nulls"),
    ([fp32([1, 2, 3, 4], [1, 4]), fp32([1, 2, 3, 4], [1, 4])], b"", "given twice"),
    ([fp32([1, 2, 3, 4], [4])], b"", "shape [4] has 1 dims; the model takes [-1, 4]"),
    ([fp32([1, 2, 3, 4], [1, -4])], b"", "'shape' must be a list of integers from 0 to"),
    ([], b"", "missing inputs ['input']"),
], ids=["size-vs-shape", "extra-bytes", "past-end", "count", "null-size", "ragged", "bool",
        "nested-bool",
        "str", "null",
        "twice", "rank", "negative-dim", "missing"])
def test_bad_tensors_are_400s_naming_the_input(demo_app: InProcess, inputs: list[Any],
                                               raw: bytes, needle: str) -> None:
    assert needle in error_of(infer(demo_app, {"inputs": inputs}, raw), 400)


def test_non_finite_values_follow_the_card_like_predict(demo_app: InProcess) -> None:
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.0, np.nan, 5.0, 1.5]], np.float32)
    header = {"inputs": [fp32(None, [2, 4], parameters={"binary_data_size": rows.nbytes})]}
    msg = error_of(infer(demo_app, header, rows.tobytes()), 400)
    assert msg.startswith("input 'input' row 1, sepal_width: nan is not allowed")


def test_protocol_errors_and_routes(demo_app: InProcess) -> None:
    assert "no Open Inference Protocol route" in error_of(demo_app.get("/v2/models"), 404)
    assert "use POST" in error_of(demo_app.get("/v2/models/iris/infer"), 405)
    unknown_output = {"inputs": [fp32([1, 2, 3, 4], [1, 4])], "outputs": [{"name": "proba"}]}
    assert "no output 'proba'" in error_of(infer(demo_app, unknown_output), 400)
    assert "inputs[0] must be an object" in error_of(infer(demo_app, {"inputs": [1]}), 400)
    assert demo_app.get("/v2/health/live").status_code == 200
    assert demo_app.get("/v2/models/iris/versions/1/ready").status_code == 200


def test_mixed_binary_and_json_inputs_of_several_datatypes(typed_function: InProcess) -> None:
    ids = np.array([[1, -2], [2**40, 7]], dtype="<i8")
    words = [b"caf\xc3\xa9", b""]
    packed = b"".join(struct.pack("<I", len(w)) + w for w in words)
    header = {"id": "mix", "inputs": [
        {"name": "ids", "datatype": "INT64", "shape": [2, 2],
         "parameters": {"binary_data_size": ids.nbytes}},
        {"name": "flags", "datatype": "BOOL", "shape": [3], "data": [True, False, True]},
        {"name": "words", "datatype": "BYTES", "shape": [2],
         "parameters": {"binary_data_size": len(packed)}},
        {"name": "half", "datatype": "FP16", "shape": [1, 3], "data": [[0.5, 1.5, -2.0]]}],
        "outputs": [{"name": "words_out", "parameters": {"binary_data": True}},
                    {"name": "ids_out"}, {"name": "flags_out"}, {"name": "half_out"}]}
    resp = infer(typed_function, header, ids.tobytes() + packed, model="typed")
    assert resp.status_code == 200, resp.text
    head_len = int(resp.headers[HLEN])
    body = json.loads(resp.content[:head_len])
    assert body["model_name"] == "typed" and body["model_version"] == "3" and body["id"] == "mix"
    out = {o["name"]: o for o in body["outputs"]}
    assert out["words_out"]["parameters"]["binary_data_size"] == len(packed)
    assert resp.content[head_len:] == packed
    assert out["ids_out"] == {"name": "ids_out", "datatype": "INT64", "shape": [2, 2],
                              "data": ids.reshape(-1).tolist()}
    assert (out["flags_out"]["datatype"], out["flags_out"]["data"]) == ("BOOL", [True, False, True])
    assert (out["half_out"]["datatype"], out["half_out"]["data"]) == ("FP16", [0.5, 1.5, -2.0])


def _typed_header(**override: dict[str, Any]) -> dict[str, Any]:
    inputs = {"ids": {"name": "ids", "datatype": "INT64", "shape": [1, 2], "data": [1, 2]},
              "flags": {"name": "flags", "datatype": "BOOL", "shape": [1], "data": [True]},
              "words": {"name": "words", "datatype": "BYTES", "shape": [1], "data": ["a"]},
              "half": {"name": "half", "datatype": "FP16", "shape": [1, 3], "data": [1, 2, 3]}}
    for name, changes in override.items():
        inputs[name] = {**inputs[name], **changes}
    return {"inputs": list(inputs.values())}


@pytest.mark.parametrize(("override", "needle"), [
    ({"ids": {"data": [1, 2**63]}}, "input 'ids' (inputs[0]): values out of range for INT64"),
    ({"ids": {"data": [1, 2.5]}}, "input 'ids' (inputs[0]): datatype INT64 cannot hold"),
    ({"flags": {"data": [1]}}, "input 'flags' (inputs[1]): datatype BOOL cannot hold int64"),
    ({"words": {"data": [3]}}, "input 'words' (inputs[2]): datatype BYTES takes strings"),
    ({"half": {"datatype": "FP32"}}, "input 'half' (inputs[3]): datatype FP32 does not match"),
    ({"half": {"datatype": "BF17"}}, "datatype BF17 does not match the model's FP16"),
], ids=["int-range", "int-float", "bool-int", "bytes-int", "fp-mismatch", "unknown-type"])
def test_typed_inputs_refuse_values_their_datatype_cannot_hold(typed_function: InProcess,
                                                              override: dict, needle: str) -> None:
    ok = infer(typed_function, _typed_header(), model="typed")
    assert ok.status_code == 200, ok.text
    assert needle in error_of(infer(typed_function, _typed_header(**override), model="typed"), 400)


def test_body_over_the_limit_is_413(typed_function: InProcess) -> None:
    header = _typed_header(words={"shape": [1], "data": ["x" * 70_000]})
    assert "limit" in error_of(infer(typed_function, header, model="typed"), 413)


@pytest.mark.parametrize(("encoding", "body", "status", "needle"), [
    ("gzip", gzip.compress(b" " * 70_000), 413, "inflates past the 65536-byte limit"),
    ("gzip", b"not gzip", 400, "body is not valid gzip data"),
    ("br", b"{}", 415, "Content-Encoding 'br' is not supported"),
], ids=["bomb", "corrupt", "brotli"])
def test_content_encoding_is_bounded(typed_function: InProcess, encoding: str, body: bytes,
                                     status: int, needle: str) -> None:
    resp = typed_function.post("/v2/models/typed/infer", data=body,
                               headers={"Content-Encoding": encoding})
    assert needle in error_of(resp, status)


def test_not_ready_is_503_in_the_protocol_shape(app, tmp_path: Path) -> None:
    fn = app({"MODEL_URI": str(tmp_path / "missing.onnx")}, wait="/healthz")
    assert fn.get("/v2/health/live").status_code == 200
    assert "model load failed" in error_of(fn.get("/v2/health/ready"), 503)
    assert "model load failed" in error_of(fn.get("/v2/models/iris"), 503)
    resp = infer(fn, {"inputs": [fp32([1, 2, 3, 4], [1, 4])]})
    assert "model load failed" in error_of(resp, 503)
    assert fn.get("/v2").json()["extensions"] == ["binary_tensor_data"]


@pytest.mark.parametrize("version", ["%09", "%20"])  # %0A: functions-framework answers first
def test_a_version_of_whitespace_is_an_unknown_version_not_another_route(
        demo_app: InProcess, version: str) -> None:
    """Found by the schemathesis fuzz test: a version that a URL parser drops (a tab) made
    POST .../versions/%09/infer read as the metadata route, a 405."""
    resp = demo_app.post(f"/v2/models/iris/versions/{version}/infer",
                              json={"inputs": [fp32([5.1, 3.5, 1.4, 0.2], [1, 4])]})
    assert resp.status_code == 404, resp.text
    assert "has no version" in resp.json()["error"]
