"""The OpenAI routes ride the one pipeline: concurrent requests (one of 100 strings, 30 of
one string) share model calls through the batcher and each gets its own embeddings, equal
to /predict's; they are counted in /metrics; a draining instance refuses them in OpenAI's
shape."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from tests import model_kinds as mk
from tests.built_models import BuiltModels
from tests.inprocess import start_in_process

WORDS = sorted({w for t in mk.TEXTS for w in t.replace(",", " ").split()})


def _texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 12)))) for _ in range(n)]


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_one_large_and_thirty_single_requests_share_model_calls(
        tmp_path: Path, built_model: BuiltModels) -> None:
    path, _ = built_model("bert")
    fn = start_in_process({"MODEL_URI": str(path), "BATCHING": "on", "INLINE_BUDGET_MS": "0"},
                          tmp_path)
    try:
        large, singles = _texts(100, 1), _texts(30, 2)
        want = {}
        for text, pred in zip(large + singles, fn.post("/predict", json={
                "instances": large + singles}).json()["predictions"]):
            want[text] = np.array(pred["embedding"])
        deadline = time.monotonic() + 60  # merging starts once the calibration thread has
        while not fn.get("/model").json()["batching"]["merging"]:  # measured the model
            assert time.monotonic() < deadline, "merging never started"
            time.sleep(0.05)
        before = fn.get("/model").json()["batching"]["calls"]
        assert fn.post("/v1/embeddings", json={"model": "model", "input": large}).is_success
        alone = fn.get("/model").json()["batching"]["calls"] - before  # its cuts by length
        before += alone
        metrics_before = fn.get("/metrics").text
        bodies = [{"json": {"model": "model", "input": large}}] + \
            [{"json": {"model": "model", "input": text}} for text in singles]
        answers = fn.concurrently("POST", "/v1/embeddings", bodies)
        calls = fn.get("/model").json()["batching"]["calls"] - before
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        for sent, answer in zip(bodies, answers):
            texts = sent["json"]["input"]
            texts = texts if isinstance(texts, list) else [texts]
            got = [d["embedding"] for d in answer.json()["data"]]
            assert len(got) == len(texts)
            for text, vector in zip(texts, got):
                assert np.abs(np.array(vector) - want[text]).max() < 1e-6, text
        # fewer calls than the large request's own cuts and one call per single request:
        # the singles joined its cuts (which calls a merge is cut into depends on the
        # measured cost of a call, so the count itself is not fixed)
        print(f"{len(bodies)} requests, {calls} model calls, {alone} for the large alone")
        assert 1 <= calls < alone + len(singles), (calls, alone)
        metrics_after = fn.get("/metrics").text
        served = 'http_requests_total{path="/v1/embeddings",status="200"}'
        assert _metric(metrics_after, served) - _metric(metrics_before, served) == 31
        assert _metric(metrics_after, "predict_rows_total") - \
            _metric(metrics_before, "predict_rows_total") == 130
    finally:
        fn.stop()


def test_a_draining_instance_refuses_in_openais_shape(app, built_model: BuiltModels) -> None:
    fn = app({"MODEL_URI": str(built_model("bert")[0])})
    drain = fn.runtime.router.drain
    drain.draining = True  # as from SIGTERM on (begin() would also start the give-up timer)
    try:
        for resp in (fn.post("/v1/embeddings", json={"model": "model", "input": "slow"}),
                     fn.get("/v1/models")):
            assert resp.status_code == 503
            assert resp.headers["retry-after"] == "1"
            assert resp.json()["error"]["type"] == "server_error"
            assert resp.json()["error"]["code"] == "shutting_down"
    finally:
        drain.draining = False
