"""The official Triton HTTP client drives the function, as an existing caller would.

Over a socket: the subject is a real client on the wire (its own HTTP stack, compression
and binary framing); the hand-built /v2 edge cases run in process (test_oip_edges.py)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.conftest import DEMO_MODEL
from tests.servers import Served

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.1, 3.5, 1.4, 0.2],
                 [5.9, 3.0, 4.2, 1.5]], dtype=np.float32)


@pytest.fixture(scope="module")
def client(demo_function: Served) -> Iterator[triton.InferenceServerClient]:
    c = triton.InferenceServerClient(demo_function.url.removeprefix("http://"))
    yield c
    c.close()


def _input(rows: np.ndarray, binary: bool, name: str = "input",
           datatype: str = "FP32") -> triton.InferInput:
    tensor = triton.InferInput(name, list(rows.shape), datatype)
    tensor.set_data_from_numpy(rows, binary_data=binary)
    return tensor


def test_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("iris") and client.is_model_ready("iris", "1")
    assert not client.is_model_ready("iris", "2") and not client.is_model_ready("nope")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    meta = client.get_model_metadata("iris", "1")
    assert meta["name"] == "iris" and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"] == [{"name": "label", "datatype": "INT64", "shape": [-1]},
                               {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}]
    config = client.get_model_config("iris")
    assert config["input"] == [{"name": "input", "data_type": "TYPE_FP32", "dims": [-1, 4]}]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_matches_onnxruntime(client: triton.InferenceServerClient, binary: bool) -> None:
    outputs = [triton.InferRequestedOutput("probabilities", binary_data=binary),
               triton.InferRequestedOutput("label", binary_data=binary)]
    result = client.infer("iris", [_input(ROWS, binary)], outputs=outputs, request_id="req-7")
    response = result.get_response()
    assert response["id"] == "req-7" and response["model_version"] == "1"
    assert [o["name"] for o in response["outputs"]] == ["probabilities", "label"]
    assert all(("data" in o) != binary for o in response["outputs"])
    session = ort.InferenceSession(str(DEMO_MODEL), providers=["CPUExecutionProvider"])
    labels, probs = session.run(None, {"input": ROWS})
    np.testing.assert_array_equal(result.as_numpy("label"), labels)
    np.testing.assert_allclose(result.as_numpy("probabilities"), probs, atol=1e-6)


def test_infer_versioned_all_outputs_binary_by_default(
        client: triton.InferenceServerClient) -> None:
    # No requested outputs: the client asks for binary_data_output, every output comes back.
    result = client.infer("iris", [_input(ROWS, True)], model_version="1")
    assert {o["name"] for o in result.get_response()["outputs"]} == {"label", "probabilities"}
    assert result.as_numpy("probabilities").shape == (4, 3)
    assert result.as_numpy("label").dtype == np.int64


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests(client: triton.InferenceServerClient, algorithm: str) -> None:
    result = client.infer("iris", [_input(ROWS, True)],
                          request_compression_algorithm=algorithm)
    assert result.as_numpy("label").tolist() == [0, 2, 0, 1]


@pytest.mark.parametrize(("model", "version", "tensor", "status", "needle"), [
    ("iris", "", _input(np.zeros((2, 5), np.float32), True), "400",
     "input 'input' (inputs[0]): shape [2, 5] does not fit the model's [-1, 4]"),
    ("iris", "", _input(ROWS.astype(np.float64), False, datatype="FP64"), "400",
     "input 'input' (inputs[0]): datatype FP64 does not match the model's FP32"),
    ("iris", "", _input(ROWS, True, name="features"), "400",
     "input 'features' (inputs[0]): the model has no such input"),
    ("nope", "", _input(ROWS, True), "404", "unknown model 'nope'"),
    ("iris", "9", _input(ROWS, True), "404", "model 'iris' has no version '9'"),
], ids=["shape", "datatype", "input-name", "model", "version"])
def test_errors_surface_as_client_exceptions(client: triton.InferenceServerClient, model: str,
                                             version: str, tensor: triton.InferInput,
                                             status: str, needle: str) -> None:
    with pytest.raises(InferenceServerException) as info:
        client.infer(model, [tensor], model_version=version)
    assert info.value.status() == status
    assert needle in info.value.message()
