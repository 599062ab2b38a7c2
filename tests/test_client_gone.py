"""A client that hangs up before its body arrives is no error of the function's: the request
ends as 499 (nginx's "client closed request"), counted as such, with no traceback logged;
the next request is answered as usual."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tests.inprocess import InProcess


def _hung_up(app: Any, path: str) -> list[dict[str, Any]]:
    """``POST path`` through the raw ASGI app, its client gone before any body byte."""
    sent: list[dict[str, Any]] = []
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 2),
             "headers": [(b"host", b"x"), (b"content-type", b"application/json"),
                         (b"content-length", b"40")]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


@pytest.mark.parametrize("path", ["/predict", "/batch-predict", "/v2/models/iris/infer"])
def test_a_client_gone_before_its_body_is_a_499_not_a_500(
        demo_app: InProcess, path: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        sent = _hung_up(demo_app.client.app, path)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 499, sent
    assert not [r for r in caplog.records if r.exc_info], caplog.text  # no traceback
    label = path if not path.startswith("/v2") else "/v2"
    assert f'http_requests_total{{path="{label}",status="499"}}' in demo_app.get("/metrics").text
    assert demo_app.post(path if not path.startswith("/v2") else "/predict",
                         json={"instances": [[5.1, 3.5, 1.4, 0.2]]}).status_code == 200
