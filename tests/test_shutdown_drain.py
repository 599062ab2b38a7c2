"""The drain state through the real wiring, in-process: a real SIGTERM to this process
reaches the server's own handler after ``Drain`` saw it; while draining, readiness says
why, new requests get 503 in each protocol's error shape, and the grace runs out once."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

from starlette.requests import Request

from functions.config.settings import Settings
from functions.http.shutdown import Drain
from functions.runtime import build


def request(method: str, path: str) -> Request:
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [(b"content-type", b"application/json")]}

    async def receive() -> dict:
        return {"type": "http.request", "body": b'{"instances": [[1, 2, 3, 4]]}'}

    return Request(scope, receive)


def test_sigterm_reaches_the_drain_then_the_server_handler() -> None:
    seen: list[int] = []
    given_up = threading.Event()
    original = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        drain = Drain(0.05, given_up.set)
        drain.arm()
        drain.arm()  # once only: a second call wraps nothing again
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert drain.draining and seen == [signal.SIGTERM]
        assert given_up.wait(10)  # the grace ran out: the process gives up its requests
    finally:
        signal.signal(signal.SIGTERM, original)


def test_no_python_handler_means_nothing_to_wrap() -> None:
    original = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        Drain(1.0).arm()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, original)


def test_while_draining_readiness_and_new_requests_answer_503(tmp_path: Path) -> None:
    rt = build(Settings(model_cache_dir=tmp_path, shutdown_grace_seconds=30))
    router = rt.router
    assert asyncio.run(router(request("GET", "/healthz"))).status_code == 200
    router.drain.draining = True  # what begin() sets; no timer in this test
    ready = asyncio.run(router(request("GET", "/readyz")))
    assert ready.status_code == 503 and b"shutting down" in ready.body
    assert asyncio.run(router(request("GET", "/healthz"))).status_code == 200
    predict = asyncio.run(router(request("POST", "/predict")))
    assert predict.status_code == 503 and b'"code":"shutting_down"' in predict.body
    assert predict.headers["retry-after"] == "1"
    v2 = asyncio.run(router(request("GET", "/v2/health/ready")))
    assert v2.status_code == 503 and v2.body.startswith(b'{"error":"this instance')
    assert router.drain.in_flight == 0
