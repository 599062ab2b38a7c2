"""Whatever a client sends, the function answers 2xx or 4xx with a JSON error: never 500.

Hypothesis generates bodies around the shapes each route expects (and far from them) and
posts them to the demo model's function through the real app in process
(tests/inprocess.py): the subject is what the app answers, not the wire.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.inprocess import InProcess

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width", "x"]
scalar = (st.none() | st.booleans() | st.text(max_size=4) | st.sampled_from(["NaN", "1e999"])
          | st.integers(min_value=-(10**30), max_value=10**30)
          | st.floats(allow_nan=False, allow_infinity=False))
value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=5)
                     | st.dictionaries(st.sampled_from(FEATURES), inner, max_size=5),
                     max_leaves=20)
row = st.lists(st.floats(-10, 10) | st.integers(-5, 5), min_size=3, max_size=5)
predict_body = st.fixed_dictionaries({"instances": st.lists(row | value, max_size=6)}) | value
tensor = st.fixed_dictionaries({
    "name": st.sampled_from(["input", "nope", ""]),
    "datatype": st.sampled_from(["FP32", "FP64", "INT64", "BOOL", "BYTES", "FP16", "X"]),
    "shape": st.lists(st.integers(-2, 5), max_size=3),
    "data": value,
}, optional={"parameters": st.dictionaries(st.text(max_size=5), scalar, max_size=2)})
infer_body = st.fixed_dictionaries({"inputs": st.lists(tensor, max_size=2)},
                                   optional={"outputs": st.lists(
                                       st.fixed_dictionaries({"name": st.text(max_size=12)}),
                                       max_size=2), "id": scalar}) | value


def check(resp) -> None:
    assert resp.status_code < 500, (resp.status_code, resp.text)
    if resp.status_code >= 400:
        assert "error" in resp.json()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(body=predict_body, route=st.sampled_from(["/predict", "/batch-predict"]))
def test_prediction_routes_never_500(demo_app: InProcess, body, route: str) -> None:
    check(demo_app.post(route, data=json.dumps(body),
                             headers={"content-type": "application/json"}))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(body=infer_body)
def test_v2_infer_never_500(demo_app: InProcess, body) -> None:
    check(demo_app.post("/v2/models/iris/infer", data=json.dumps(body),
                             headers={"content-type": "application/json"}))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=64), ctype=st.sampled_from(
    ["application/json", "application/octet-stream", "text/plain", ""]))
def test_raw_bytes_never_500(demo_app: InProcess, raw: bytes, ctype: str) -> None:
    for route in ("/predict", "/batch-predict", "/v2/models/iris/infer"):
        check(demo_app.post(route, data=raw, headers={"content-type": ctype}))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(header=infer_body, tail=st.binary(max_size=48), declared=st.integers(-5, 400),
       sizes=st.lists(st.integers(-3, 40), max_size=2))
def test_v2_binary_framing_never_500(demo_app: InProcess, header, tail: bytes,
                                     declared: int, sizes: list[int]) -> None:
    if isinstance(header, dict):
        for tensor, size in zip(header.get("inputs", []), sizes):
            tensor.setdefault("parameters", {})["binary_data_size"] = size
    head = json.dumps(header).encode()
    check(demo_app.post("/v2/models/iris/infer", data=head + tail, headers={
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(declared)}))


def extreme(depth: int, kinds: str, leaf: bytes) -> bytes:
    """``leaf`` nested ``depth`` levels deep, each level a list or an object (by ``kinds``),
    built iteratively (the test must not recurse either)."""
    opens, closes = [], []
    for i in range(depth):
        if kinds[i % len(kinds)] == "l":
            opens.append(b"[")
            closes.append(b"]")
        else:
            opens.append(b'{"sepal_length": ')
            closes.append(b"}")
    return b"".join(opens) + leaf + b"".join(reversed(closes))


leaf = st.sampled_from([b"1", b"NaN", b"-Infinity", b"1e999", b"18446744073709551617",
                        b'"\\ud800"', b'"\\ud83d\\ude00"', b"[]", b"{}", b'"x"', b"true"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(depth=st.integers(0, 3000), kinds=st.text("lo", min_size=1, max_size=4), leaf=leaf,
       wrap=st.sampled_from([b"%s", b'{"instances": [%s]}', b'{"instances": %s}',
                             b'{"instances": [[1, 2, NaN, %s]]}', b'{"inputs": %s}',
                             b'{"inputs": [{"name": "input", "datatype": "FP32", '
                             b'"shape": [1, 4], "data": %s}]}']),
       bom=st.booleans(), dup=st.booleans(),
       route=st.sampled_from(["/predict", "/batch-predict", "/v2/models/iris/infer"]))
def test_extreme_bodies_never_500(demo_app: InProcess, depth: int, kinds: str, leaf: bytes,
                                  wrap: bytes, bom: bool, dup: bool, route: str) -> None:
    """Deep nesting, NaN/Infinity, huge numbers, surrogates, BOM, duplicate keys: an answer
    or a JSON 4xx, never a 5xx (see tests/test_parser_limits.py for the exact rules)."""
    body = wrap % extreme(depth, kinds, leaf)
    if dup and body.startswith(b"{"):
        body = b'{"instances": 1, ' + body[1:]
    resp = demo_app.post(route, data=(b"\xef\xbb\xbf" if bom else b"") + body,
                              headers={"content-type": "application/json"}, timeout=20)
    check(resp)
    assert resp.headers["content-type"].startswith("application/json")
