"""Valid JSON, just extreme: every route answers its correct answer or a 4xx in the error
contract, never a 5xx, a plain-text page or a hang (requests carry a hang bound, not a
speed assertion).

The rules tested here are documented in functions/http/bodies.py: one BOM skipped, the
last duplicate key wins, integers past 64 bits read as floats, nesting bounded (1024, 512
with NaN/Infinity literals), lone surrogate escapes and invalid UTF-8 refused.
"""

from __future__ import annotations

import json

import pytest

from functions.codecs.json_fallback import FALLBACK_MAX_DEPTH, nesting_depth
from functions.codecs.json_text import parse_json
from functions.errors import MalformedJSON
from tests.inprocess import InProcess

SETOSA = [5.1, 3.5, 1.4, 0.2]
JSON = {"content-type": "application/json"}
HANG_BOUND = 20  # seconds: a hang, not a speed limit
ROUTES = ("/predict", "/batch-predict", "/v2/models/iris/infer")


def deep(depth: int, leaf: bytes = b"1", kind: str = "list") -> bytes:
    if kind == "list":
        return b"[" * depth + leaf + b"]" * depth
    return b'{"a":' * depth + leaf + b"}" * depth


def post(fn: InProcess, route: str, body: bytes):
    resp = fn.post(route, data=body, headers=JSON, timeout=HANG_BOUND)
    assert resp.status_code < 500, (route, resp.status_code, resp.text[:300])
    assert resp.headers["content-type"].startswith("application/json"), resp.text[:200]
    return resp


def error(resp) -> dict:
    assert 400 <= resp.status_code < 500, resp.text[:300]
    err = resp.json()["error"]
    return err if isinstance(err, dict) else {"message": err}  # /v2 answers {"error": str}


# -- the parser alone ----------------------------------------------------------------------
@pytest.mark.parametrize("body, value", [
    (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),
    (b'{"a": 1, "a": 2}', {"a": 2}),
    (b"18446744073709551617", float(2**64 + 1)),
    (b"[NaN, 18446744073709551617, 5]", None),
    (b"1" * 5000, float("inf")),
    (b"[NaN, " + b"1" * 400 + b"]", None),  # stays an int: validation says out of range
    (b"[1e999, NaN]", None),
    (b'["\\ud83d\\ude00"]', ["\U0001F600"]),
    (b'[NaN, "\\\\ud800"]', None),  # an escaped backslash: the text \ud800, no surrogate
])
def test_parser_reads_extreme_but_valid_bodies(body: bytes, value) -> None:
    parsed = parse_json(body)
    if value is not None:
        assert parsed == value
    else:
        assert isinstance(parsed, list) and len(parsed) >= 2


@pytest.mark.parametrize("body, words", [
    (deep(1025), "1024 levels"),
    (deep(100_000), "1024 levels"),
    (deep(100_000, kind="object"), "1024 levels"),
    (b"[NaN," + deep(FALLBACK_MAX_DEPTH + 1) + b"]", "may nest at most"),
    (b'{"a": "\\ud800"}', "surrogate"),
    (b'[NaN, "\\udc00x"]', "surrogate"),
    (b'[NaN, {"\\ud800": 1}]', "surrogate"),
    (b"\xef\xbb\xbf\xef\xbb\xbf{}", "not valid JSON"),  # one BOM is skipped, not two
    (b"[1, 2]\xff", "not valid JSON"),
    (b"[NaN]\xff", "not valid JSON"),
])
def test_parser_refuses_with_a_named_reason(body: bytes, words: str) -> None:
    with pytest.raises(MalformedJSON) as caught:
        parse_json(body)
    assert words in caught.value.message


def test_depth_scan_sees_brackets_in_strings_and_escapes() -> None:
    assert nesting_depth(b'["[[[[", {"k\\"[": ["]]]"]}]') == 3
    assert nesting_depth(b'["\\\\", [[1]]]') == 3
    assert nesting_depth(b"") == 0
    value = [{"a": [[["x[y"]]], "b": "\\\"{"}]
    assert nesting_depth(json.dumps(value).encode()) == 5


# -- the served function ---------------------------------------------------------------------
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("body", [deep(100_000), deep(100_000, kind="object"),
                                  b'{"instances": ' + deep(5000) + b"}",
                                  b'{"instances": [NaN, ' + deep(800) + b"]}",
                                  b'{"inputs": [{"name": "input", "data": ' + deep(3000)
                                  + b', "shape": [1, 4], "datatype": "FP32"}]}'],
                         ids=["list", "object", "instances", "nan-fallback", "v2-data"])
def test_deep_bodies_are_400_naming_the_depth(demo_app: InProcess, route: str,
                                              body: bytes) -> None:
    err = error(post(demo_app, route, body))
    assert "nest" in err["message"]


@pytest.mark.parametrize("route", ROUTES)
def test_lone_surrogates_are_400_on_every_route(demo_app: InProcess, route: str) -> None:
    for body in (b'{"instances": [{"\\ud800": 1}]}', b'{"instances": [NaN, "\\udfff"]}',
                 b'{"inputs": [{"name": "\\ud800", "datatype": "FP32", "shape": [1],'
                 b' "data": [NaN]}]}'):
        assert "surrogate" in error(post(demo_app, route, body))["message"]


def test_bom_duplicate_keys_and_huge_integers_answer_correctly(demo_app: InProcess) -> None:
    plain = post(demo_app, "/predict", json.dumps({"instances": [SETOSA]}).encode()).json()
    with_bom = post(demo_app, "/predict",
                    b"\xef\xbb\xbf" + json.dumps({"instances": [SETOSA]}).encode())
    assert with_bom.status_code == 200 and with_bom.json() == plain
    dup = post(demo_app, "/predict",
               b'{"instances": [[9, 9, 9, 9]], "instances": [[5.1, 3.5, 1.4, 0.2]]}')
    assert dup.json() == plain  # the last key wins
    huge = post(demo_app, "/predict", b'{"instances": [[18446744073709551617, 3.5, 1.4, '
                                           b"0.2]]}")
    assert huge.status_code == 200, huge.text  # 2^64+1 is a fine float32 feature
    beyond = post(demo_app, "/predict", b'{"instances": [[' + b"9" * 5000
                  + b", 3.5, 1.4, 0.2]]}")
    assert error(beyond)["details"][0]["field"] == "sepal_length"
    v2 = post(demo_app, "/v2/models/iris/infer", b'{"inputs": [{"name": "input", '
              b'"datatype": "FP32", "shape": [1, 4], "data": [18446744073709551617, 1, 1, 1]}]}')
    assert v2.status_code == 200, v2.text


@pytest.mark.parametrize("route", ROUTES)
def test_long_arrays_strings_and_wide_objects_are_4xx(demo_app: InProcess,
                                                      route: str) -> None:
    bodies = [
        b'{"instances": [' + b",".join([b"[1,2,3,4]"] * 25_000) + b"]}",  # past both caps
        b'{"instances": [[' + b",".join([b"1"] * 1_000_000) + b"]]}",
        b'{"instances": ["' + b"x" * 5_000_000 + b'"]}',
        b'{"instances": [{' + b",".join(b'"k%d": 1' % i for i in range(100_000)) + b"}]}",
        b'{"instances": [{"sepal_length": ' + deep(500, kind="object") + b"}]}",
    ]
    for body in bodies:
        resp = post(demo_app, route, body)
        if route == "/batch-predict" and resp.status_code == 200:  # per-item errors
            assert all("error" in item for item in resp.json()["predictions"]), resp.text[:300]
        else:
            error(resp)
        assert len(resp.content) < 100_000  # an error names the problem, it does not echo it
