"""The bundled model served over real HTTP by functions-framework answers the documented
routes, byte for byte as the in-process app does (tests/inprocess.py).

Over a socket on purpose: these smoke tests keep the in-process path, which most contract
tests use, from drifting away from the served process."""

import pytest

from tests.inprocess import InProcess
from tests.servers import Served

SETOSA = [5.1, 3.5, 1.4, 0.2]


def test_demo_model_answers_a_prediction(demo_function: Served) -> None:
    resp = demo_function.post("/predict", json={"instances": [SETOSA]})
    assert resp.status_code == 200, resp.text
    pred = resp.json()["predictions"][0]
    assert pred["label"] == "setosa"
    assert set(pred["probabilities"]) == {"setosa", "versicolor", "virginica"}


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/predict", b'{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}'),
    ("POST", "/batch-predict?format=columns", b'{"instances": [[5.1, 3.5, 1.4, 0.2], [1]]}'),
    ("POST", "/predict", b'{"instances": [[5.1, "x", 1.4, 0.2]]}'),
    ("POST", "/predict", b"{not json"),
    ("POST", "/v2/models/iris/infer",
     b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4],'
     b' "data": [5.1, 3.5, 1.4, 0.2]}]}'),
    ("GET", "/healthz", b""),
    ("GET", "/readyz", b""),
    ("GET", "/openapi.json", b""),
    ("GET", "/nope", b""),
    ("GET", "/robots.txt", b""),
    ("GET", "/predict", b""),
])
def test_served_and_in_process_answer_the_same_bytes(demo_function: Served, demo_app: InProcess,
                                                     method: str, path: str,
                                                     body: bytes) -> None:
    headers = {"content-type": "application/json"} if body else {}
    served = demo_function.request(method, path, data=body or None, headers=headers)
    local = demo_app.request(method, path, data=body or None, headers=headers)
    assert (served.status_code, served.content) == (local.status_code, local.content)
    assert served.headers.get("content-type") == local.headers.get("content-type")
