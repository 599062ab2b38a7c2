"""Each adapter refuses a body over its platform's limit with a 413 in the error contract,
before reading or decoding it all: Cloud Run / Cloud Functions 32 MiB (MAX_BODY_BYTES),
Lambda's 6 MiB synchronous payload (API Gateway's 10 MB is never reached through Lambda),
a Pub/Sub push body (10 MiB of message data, base64) on POST /events."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from functions.aws.lambda_adapter import LAMBDA_SYNC_PAYLOAD, LambdaAdapter
from functions.config.settings import Settings
from functions.events.routes import PUSH_BODY_LIMIT
from functions.runtime import build
from tests.eventfiles import load
from tests.inprocess import InProcess

SETOSA = [5.1, 3.5, 1.4, 0.2]


def _too_big(size: int) -> bytes:
    return b'{"instances": [' + b"[5.1, 3.5, 1.4, 0.2]," * (size // 21) + b"[1, 1, 1, 1]]}"


def test_lambda_http_events_over_6_mib_are_413(tmp_path: Path) -> None:
    rt = build(Settings(model_cache_dir=tmp_path))
    deadline = time.monotonic() + 60
    while rt.holder.model is None and time.monotonic() < deadline:
        time.sleep(0.05)
    adapter = LambdaAdapter(rt.router, rt.events)
    for name, encode in (("apigw_v1.json", False), ("apigw_v2.json", True),
                         ("function_url.json", True)):
        event = load(name)
        raw = _too_big(LAMBDA_SYNC_PAYLOAD + 1024)
        event["body"] = base64.b64encode(raw).decode() if encode else raw.decode()
        event["isBase64Encoded"] = encode
        resp = adapter(event, None)
        assert resp["statusCode"] == 413, (name, resp["statusCode"])
        assert json.loads(resp["body"])["error"]["code"] == "payload_too_large"
    small = load("apigw_v2.json")
    small["body"], small["isBase64Encoded"] = json.dumps({"instances": [SETOSA]}), False
    assert adapter(small, None)["statusCode"] == 200


def test_events_route_refuses_a_body_no_pubsub_message_can_make(app) -> None:
    fn: InProcess = app({"EVENT_ROUTES": "true"})
    resp = fn.post("/events", data=b"{" + b" " * PUSH_BODY_LIMIT + b"}",
                   headers={"content-type": "application/json"})
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"
    resp = fn.post("/predict", data=_too_big(PUSH_BODY_LIMIT + 1024),
                   headers={"content-type": "application/json"})
    assert resp.status_code == 422, resp.text[:200]  # read whole: the HTTP routes keep 32 MiB
    assert "over the limit of" in resp.json()["error"]["message"]
