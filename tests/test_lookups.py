"""Feature lookups end to end: the function (the real app, in process: tests/inprocess.py)
calls a real local feature service over HTTP.

One function (module scope) serves the iris model with a card declaring two lookups:
``user_id`` -> sepal features (no defaults) and ``item_id`` -> petal features (with
defaults). Every test uses its own keys, so the shared cache never couples tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.feature_service import FeatureService, lookup_card, profile, sepal_lookup
from tests.inprocess import InProcess, start_in_process

PETAL_DEFAULTS = {"petal_length": 1.4, "petal_width": 0.2}
SETTINGS = {"LOOKUP_READ_TIMEOUT": "0.3", "LOOKUP_DEADLINE_SECONDS": "3",
            "LOOKUP_RETRIES": "2", "LOOKUP_BACKOFF_SECONDS": "0.01"}


@pytest.fixture(scope="module")
def features() -> Iterator[FeatureService]:
    service = FeatureService()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def fn(features: FeatureService, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    tmp = tmp_path_factory.mktemp("lookups")
    items = {"key_field": "item_id", "url_template": features.url + "/items/{key}",
             "features": {"petal_length": "petal.length", "petal_width": "petal.width"},
             "defaults": PETAL_DEFAULTS}
    card = lookup_card(tmp / "card.json", [sepal_lookup(features.url), items])
    served = start_in_process({"MODEL_CARD_URI": str(card), **SETTINGS}, tmp)
    yield served
    served.stop()


def full(key: str) -> dict[str, float]:
    """The instance the lookups should produce for ``key`` (both specs)."""
    sl, sw, pl, pw = profile(key)
    return {"sepal_length": sl, "sepal_width": sw, "petal_length": pl, "petal_width": pw}


def direct(fn: InProcess, rows: list[dict[str, float]]) -> list[dict[str, Any]]:
    """Predictions for complete instances (no lookup involved)."""
    resp = fn.post("/predict", json={"instances": rows})
    assert resp.status_code == 200, resp.text
    return resp.json()["predictions"]


def same(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> bool:
    """Equal predictions (probabilities to float32 noise: batch composition changes SIMD)."""
    return len(got) == len(want) and all(
        g["label"] == w["label"] and g["probabilities"] == pytest.approx(w["probabilities"])
        for g, w in zip(got, want))


def batch(fn: InProcess, instances: list[Any]) -> dict[str, Any]:
    resp = fn.post("/batch-predict", json={"instances": instances})
    assert resp.status_code == 200, resp.text
    return resp.json()


def metric(fn: InProcess, name: str) -> float:
    for line in fn.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def with_petals(key: str, **kw: Any) -> dict[str, Any]:
    return {"user_id": key, "petal_length": profile(key)[2], "petal_width": profile(key)[3], **kw}


def test_batch_dedupes_keys_fetches_in_parallel_and_keeps_order(fn: InProcess,
                                                                features: FeatureService) -> None:
    keys = ["order-a", "order-b", "order-a", "order-c", "order-b", "order-d"]
    # The first key answers last, so completion order differs from request order.
    for key, latency in zip(["order-a", "order-b", "order-c", "order-d"], [0.2, 0.05, 0.05, 0.05]):
        features.behave(key, latency=latency)
    body = batch(fn, [with_petals(k) for k in keys])
    assert body["errors"] == 0
    assert same(body["predictions"], direct(fn, [full(k) for k in keys]))
    assert {k: features.calls[k] for k in set(keys)} == dict.fromkeys(set(keys), 1)
    assert features.max_in_flight > 1  # the four fetches overlapped at the service


def test_repeated_keys_never_reach_the_network_again(fn: InProcess,
                                                     features: FeatureService) -> None:
    instances = [with_petals(f"again-{i}") for i in range(5)]
    first = batch(fn, instances)
    hits = metric(fn, "lookup_cache_hits_total")
    calls = features.total_calls
    second = batch(fn, instances + [{"user_id": "again-0", "item_id": "again-0"}])
    assert features.total_calls == calls + 1  # only the new item key, not a single user key
    assert same(second["predictions"][:5], first["predictions"])
    assert metric(fn, "lookup_cache_hits_total") == hits + 5  # five distinct user keys


def test_features_in_the_instance_win_over_looked_up_ones(fn: InProcess) -> None:
    own = {**with_petals("own-1"), "sepal_length": 7.7}
    expected = direct(fn, [{**full("own-1"), "sepal_length": 7.7}])
    assert same(batch(fn, [own])["predictions"], expected)


def test_5xx_and_429_are_retried_then_succeed(fn: InProcess, features: FeatureService) -> None:
    features.behave("flaky", fail=[503, 429], headers={"Retry-After": "0"})
    body = batch(fn, [with_petals("flaky")])
    assert body["errors"] == 0
    assert features.calls["flaky"] == 3


def test_4xx_fails_only_its_item_without_retry_and_is_not_cached(
        fn: InProcess, features: FeatureService) -> None:
    features.behave("gone", status=404)
    instances = [with_petals("fine-1"), with_petals("gone"), with_petals("fine-2")]
    body = batch(fn, instances)
    assert body["errors"] == 1
    err = body["predictions"][1]["error"]
    assert (err["status"], err["code"], err["index"]) == (424, "lookup_failed", 1)
    assert err["details"] == [{"index": 1, "field": "user_id", "message": err["message"]}]
    assert "404" in err["message"]
    assert same(body["predictions"][:1], direct(fn, [full("fine-1")]))
    assert features.calls["gone"] == 1
    batch(fn, instances)
    assert features.calls["gone"] == 2  # the failure was not cached


def test_persistent_5xx_gives_up_after_the_retries(fn: InProcess, features: FeatureService) -> None:
    features.behave("down", status=500)
    err = batch(fn, [with_petals("down")])["predictions"][0]["error"]
    assert err["code"] == "lookup_failed" and "500 (3 attempts)" in err["message"]
    assert features.calls["down"] == 3


@pytest.mark.parametrize(("body", "says"), [
    (b"{not json", "not valid JSON"),
    (b'{"sepal": {"length": 5.0}}', "no field 'sepal.width'"),
    (b'{"sepal": {"length": 5.0, "width": "wide"}}', "not a number"),
    (b'{"sepal": {"length": 5.0, "width": null}}', "null"),
])
def test_malformed_answers_fail_the_item_once(fn: InProcess, features: FeatureService,
                                              body: bytes, says: str) -> None:
    key = f"bad-{len(body)}"
    features.behave(key, body=body)
    err = batch(fn, [with_petals(key)])["predictions"][0]["error"]
    assert err["code"] == "lookup_failed" and says in err["message"]
    assert features.calls[key] == 1


def test_a_null_answer_is_not_cached(fn: InProcess, features: FeatureService) -> None:
    features.behave("nulls", body=b'{"sepal": {"length": 5.0, "width": null}}')
    for expected_calls in (1, 2):  # a failure: the next request asks the service again
        err = batch(fn, [with_petals("nulls")])["predictions"][0]["error"]
        assert err["code"] == "lookup_failed" and "null" in err["message"]
        assert features.calls["nulls"] == expected_calls


def test_a_hanging_service_times_out_and_the_rest_is_scored(
        fn: InProcess, features: FeatureService) -> None:
    features.behave("hangs", hang=True)
    body = batch(fn, [with_petals("hangs"), with_petals("quick")])
    assert body["predictions"][0]["error"]["code"] == "lookup_failed"
    assert "no answer within 0.3s" in body["predictions"][0]["error"]["message"]
    assert same(body["predictions"][1:], direct(fn, [full("quick")]))
    assert features.calls["hangs"] == 1  # a read timeout is not retried


def test_declared_defaults_replace_a_failed_lookup(fn: InProcess, features: FeatureService) -> None:
    features.behave("no-item", status=503)
    instance = {"item_id": "no-item", "sepal_length": 5.1, "sepal_width": 3.5}
    body = batch(fn, [instance])
    assert body["errors"] == 0
    assert same(body["predictions"], direct(fn, [{"sepal_length": 5.1, "sepal_width": 3.5,
                                                  **PETAL_DEFAULTS}]))
    assert metric(fn, "lookup_defaults_used_total") >= 1


def test_strict_predict_fails_with_424_or_422(fn: InProcess, features: FeatureService) -> None:
    features.behave("strict-gone", status=404)
    instances = [with_petals("ok-s"), with_petals("strict-gone")]
    resp = fn.post("/predict", json={"instances": instances})
    assert resp.status_code == 424
    err = resp.json()["error"]
    assert err["code"] == "lookup_failed" and err["message"].startswith("instances[1]: lookup of")
    assert err["details"][0]["field"] == "user_id" and err["details"][0]["index"] == 1
    resp = fn.post("/predict", json={"instances": [{"petal_length": 1.0, "petal_width": 0.2}]})
    assert resp.status_code == 422
    assert resp.json()["error"]["details"][0] == {
        "index": 0, "field": "user_id",
        "message": "missing lookup key (or send the looked-up features)"}


def test_bad_keys_are_per_item_422s(fn: InProcess) -> None:
    petals = {"petal_length": 1.0, "petal_width": 0.2}
    instances = [with_petals("good-k"), petals, {**petals, "user_id": True},
                 {**petals, "user_id": {"id": 1}}, {**petals, "user_id": ""}, [5.0, 3.0]]
    preds = batch(fn, instances)["predictions"]
    assert "label" in preds[0]
    for i in range(1, 5):
        err = preds[i]["error"]
        assert (err["status"], err["index"], err["details"][0]["field"]) == (422, i, "user_id")
    assert preds[5]["error"]["status"] == 422  # a short list: row validation refuses it first


def test_concurrent_requests_share_one_fetch(fn: InProcess, features: FeatureService) -> None:
    features.behave("shared", latency=0.25)  # under the 0.3 s read timeout
    with ThreadPoolExecutor(2) as pool:
        bodies = list(pool.map(lambda _: batch(fn, [with_petals("shared")]), range(2)))
    assert same(bodies[0]["predictions"], bodies[1]["predictions"])
    assert features.calls["shared"] == 1


def test_model_and_metrics_show_the_lookups(fn: InProcess, features: FeatureService) -> None:
    features.behave("metrics-gone", status=404)  # this test makes each counter it reads
    batch(fn, [with_petals("metrics-hit"), with_petals("metrics-gone")])
    batch(fn, [with_petals("metrics-hit")])
    info = fn.get("/model").json()
    assert [lk["key_field"] for lk in info["lookups"]] == ["user_id", "item_id"]
    assert info["lookups"][1]["defaults"] == PETAL_DEFAULTS
    assert info["lookup_settings"]["lookup_read_timeout"] == 0.3
    text = fn.get("/metrics").text
    for name in ("lookup_cache_hits_total", "lookup_cache_misses_total",
                 'lookup_errors_total{reason="status_4xx"}', "lookup_request_seconds_count",
                 "lookup_request_seconds_sum", "lookup_step_seconds_count"):
        assert name in text, name


def test_concurrency_is_bounded_and_the_deadline_ends_the_step(tmp_path: Path) -> None:
    """3 threads, 0.5 s deadline: 6 keys at 0.1 s all arrive, never more than 3 at once;
    15 keys at 0.2 s cannot all be done in time: those queued past the deadline never go out."""
    features = FeatureService()  # its own: no hanging call from another test in flight
    # Declared by the LOOKUP_SPECS setting this time; the bundled card has no lookups.
    specs = json.dumps([sepal_lookup(features.url)])
    served = start_in_process({"LOOKUP_SPECS": specs, "LOOKUP_CONCURRENCY": "3",
                             "LOOKUP_DEADLINE_SECONDS": "0.5"}, tmp_path)
    try:
        assert served.get("/model").json()["lookups"][0]["key_field"] == "user_id"
        bounded = [f"bound-{i}" for i in range(6)]
        late = [f"late-{i}" for i in range(15)]
        for key in bounded:
            features.behave(key, latency=0.1)
        for key in late:
            features.behave(key, latency=0.2)
        assert batch(served, [with_petals(k) for k in bounded])["errors"] == 0
        assert features.max_in_flight == 3
        preds = batch(served, [with_petals(k) for k in late])["predictions"]
    finally:
        served.stop()
        features.stop()
    assert sum(features.calls[k] for k in late) < len(late)
    codes = [p["error"]["code"] if "error" in p else "ok" for p in preds]
    assert "ok" in codes and "lookup_failed" in codes and set(codes) == {"ok", "lookup_failed"}
