"""SIGTERM under the production server (functions-framework -> gunicorn -> uvicorn worker).

64 requests are in flight when the platform's SIGTERM reaches the process it started:
single, batch and v2 requests whose bodies are still arriving, and single predictions
waiting on a slow feature lookup. Every one must get its normal 200, readiness must turn
503 (or the socket refuse) from the signal on, and the process must exit 0 well before
the 10 s SIGKILL. A request that outlives SHUTDOWN_GRACE_SECONDS is given up so the exit
still comes in time.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.feature_service import FeatureService, lookup_card, sepal_lookup
from tests.servers import Served, start_function

SETOSA = [5.1, 3.5, 1.4, 0.2]
KILL_AFTER = 10.0  # Cloud Run's SIGKILL delay: the exit must come before it
HANG_BOUND = 30.0


@pytest.fixture
def features() -> Iterator[FeatureService]:
    service = FeatureService(latency=2.5)
    yield service
    service.stop()


def lookup_function(features: FeatureService, tmp: Path, **env: str) -> Served:
    card = lookup_card(tmp / "card.json", [sepal_lookup(features.url)])
    return start_function({"MODEL_CARD_URI": str(card), "LOOKUP_READ_TIMEOUT": "20",
                           "LOOKUP_DEADLINE_SECONDS": "20", "LOG_FORMAT": "text", **env}, tmp)


class Held:
    """One request on its own connection: headers and part of the body sent now, the rest
    when ``finish`` is called (a client still uploading when SIGTERM comes)."""

    def __init__(self, fn: Served, path: str, body: dict[str, Any], split: bool) -> None:
        raw = json.dumps(body).encode()
        self.head, self.tail = (raw[: len(raw) // 2], raw[len(raw) // 2:]) if split \
            else (raw, b"")
        host, port = fn.url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=HANG_BOUND)
        self.conn.putrequest("POST", path)
        self.conn.putheader("Content-Type", "application/json")
        self.conn.putheader("Content-Length", str(len(raw)))
        self.conn.endheaders(self.head)
        self.path = path

    def finish(self) -> tuple[int, dict[str, Any]]:
        if self.tail:
            self.conn.send(self.tail)
        resp = self.conn.getresponse()
        return resp.status, json.loads(resp.read())


def in_flight(fn: Served) -> float:
    for line in fn.get("/metrics").text.splitlines():
        if line.startswith("http_requests_in_flight "):
            return float(line.split()[1]) - 1  # less the /metrics request itself
    raise AssertionError("no in-flight gauge")


def wait_for(predicate, bound: float = HANG_BOUND) -> None:
    deadline = time.monotonic() + bound
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def refused_or_503(fn: Served, method: str, path: str, **kw: Any) -> str:
    try:
        resp = requests.request(method, fn.url + path, timeout=HANG_BOUND, **kw)
    except requests.ConnectionError:
        return "refused"
    assert resp.status_code == 503, (path, resp.status_code, resp.text)
    return "503"


def test_sigterm_answers_all_64_in_flight_and_exits_0_in_time(
        features: FeatureService, tmp_path: Path) -> None:
    fn = lookup_function(features, tmp_path, SHUTDOWN_GRACE_SECONDS="8")
    infer = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 4],
                         "data": SETOSA + SETOSA}]}
    held = [Held(fn, "/predict", {"instances": [SETOSA]}, split=True) for _ in range(16)]
    held += [Held(fn, "/batch-predict", {"instances": [SETOSA, [1, 2]] * 50}, split=True)
             for _ in range(16)]
    held += [Held(fn, "/v2/models/iris/infer", infer, split=True) for _ in range(16)]
    held += [Held(fn, "/predict", {"instances": [{"user_id": f"u{i}", "petal_length": 1.4,
                                                  "petal_width": 0.2}]}, split=False)
             for i in range(16)]  # waiting on the feature service (2.5 s)
    wait_for(lambda: in_flight(fn) >= 64)

    signalled = time.monotonic()
    os.kill(fn.proc.pid, signal.SIGTERM)  # what the platform signals: the process it ran
    wait_for(lambda: "SIGTERM: draining" in fn.log())
    assert "draining 64 request(s) in flight" in fn.log()
    outcomes = {refused_or_503(fn, "GET", "/readyz"),
                refused_or_503(fn, "POST", "/predict", json={"instances": [SETOSA]})}

    results: list[tuple[int, dict[str, Any]] | BaseException] = [None] * len(held)  # type: ignore[list-item]

    def finish(i: int) -> None:
        try:
            results[i] = held[i].finish()
        except BaseException as exc:  # noqa: BLE001 - reported below with its request
            results[i] = exc

    threads = [threading.Thread(target=finish, args=(i,)) for i in range(len(held))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG_BOUND)
    for request, result in zip(held, results):
        assert isinstance(result, tuple), (request.path, result)
        status, body = result
        assert status == 200, (request.path, body)
        assert body.get("predictions") or body.get("outputs"), body
    assert sum(r[1].get("errors", 0) for r in results) == 16 * 50  # bad items stay per item
    assert features.total_calls == 16

    code = fn.proc.wait(KILL_AFTER - (time.monotonic() - signalled))
    assert code == 0, fn.log()
    assert outcomes <= {"refused", "503"}


def test_a_request_past_the_grace_is_given_up_and_the_exit_still_comes_in_time(
        features: FeatureService, tmp_path: Path) -> None:
    features.behave("stuck", hang=True)
    fn = lookup_function(features, tmp_path, SHUTDOWN_GRACE_SECONDS="1")
    stuck = Held(fn, "/predict", {"instances": [{"user_id": "stuck", "petal_length": 1.4,
                                                 "petal_width": 0.2}]}, split=False)
    wait_for(lambda: features.calls["stuck"] >= 1)
    signalled = time.monotonic()
    os.kill(fn.proc.pid, signal.SIGTERM)
    code = fn.proc.wait(KILL_AFTER - (time.monotonic() - signalled))
    assert code == 0, fn.log()
    assert "shutdown grace of 1s is over: giving up 1 request(s)" in fn.log()
    with pytest.raises((http.client.HTTPException, OSError)):
        stuck.finish()  # the connection closes without an answer rather than a late kill
