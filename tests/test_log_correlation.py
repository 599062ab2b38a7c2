"""Log lines carry the trace of the request or event they were written for, in the fields
the platforms read: Cloud Logging's ``logging.googleapis.com/trace`` (``projects/P/traces/T``),
``spanId`` (16 hex) and ``trace_sampled``; X-Ray's trace ID on Lambda. Over HTTP on the
production server (gunicorn worker, JSON lines on stdout) with either trace header, for a
Pub/Sub message (its ``googclient_traceparent`` attribute) and a CloudEvent (its
``traceparent`` extension), on Lambda with ``_X_AMZN_TRACE_ID`` and SQS's ``AWSTraceHeader``.
The project ID comes from GOOGLE_CLOUD_PROJECT, or on Google Cloud from the metadata server
(a local stand-in here, the far end of the network)."""

from __future__ import annotations

import http.server
import io
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.logs import JsonFormatter
from functions.telemetry.context import cloud_trace, parse, traceparent, xray
from tests.eventfiles import lambda_handler, load, pubsub_push

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE}-{SPAN}-01"
CLOUD_TRACE = "105445aa7843bc8bf206b12000100000/74;o=1"  # span 74 = 000000000000004a
XRAY_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
MISSING_MODEL = {"MODEL_URI": "/nonexistent/model.onnx", "LOAD_WAIT_SECONDS": "1",
                 "LOG_FORMAT": "json"}


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def lines_with(text: str, needle: str) -> list[dict[str, Any]]:
    return [line for line in json_lines(text) if needle in line["message"]]


# -- the formats, as the platforms document them ---------------------------------------------
def test_headers_parse_as_documented() -> None:
    ids = traceparent(TRACEPARENT)
    assert (ids.trace, ids.span, ids.sampled) == (TRACE, SPAN, True)
    assert traceparent(f"00-{TRACE}-{SPAN}-00").sampled is False
    for bad in ("", "00-abc-def-01", f"ff-{TRACE}-{SPAN}-01", f"00-{'0' * 32}-{SPAN}-01",
                f"00-{TRACE}-{'0' * 16}-01", f"00-{TRACE}-{SPAN}-zz"):
        assert traceparent(bad) is None, bad
    ids = cloud_trace(CLOUD_TRACE)  # Cloud Trace's own example: span 74 -> 000000000000004a
    assert (ids.trace, ids.span, ids.sampled) == ("105445aa7843bc8bf206b12000100000",
                                                  "000000000000004a", True)
    assert cloud_trace("105445aa7843bc8bf206b12000100000").span is None
    assert cloud_trace("nothex/1;o=1") is None
    ids = xray(f"Root={XRAY_ROOT};Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:0")
    assert (ids.xray, ids.trace, ids.span, ids.sampled) == (
        XRAY_ROOT, "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8", True)
    assert xray("Root=1-xyz;Sampled=0") is None
    assert parse((b"traceparent", TRACEPARENT.encode())).trace == TRACE


# -- HTTP on the production server ------------------------------------------------------------
class _Metadata(http.server.BaseHTTPRequestHandler):
    """The metadata server's project-id endpoint (requires Metadata-Flavor: Google)."""

    asked: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).asked.append(self.path)
        ok = self.path == "/computeMetadata/v1/project/project-id" \
            and self.headers.get("Metadata-Flavor") == "Google"
        body = b"metadata-project" if ok else b"no"
        self.send_response(200 if ok else 403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def metadata_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Metadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _failing_requests(fn: Any) -> str:
    """Three requests that log a 503 line each: traceparent, X-Cloud-Trace-Context, none."""
    for headers in ({"traceparent": TRACEPARENT}, {"X-Cloud-Trace-Context": CLOUD_TRACE}, {}):
        resp = fn.post("/predict", json={"instances": [[1, 2, 3, 4]]}, headers=headers)
        assert resp.status_code == 503, resp.text
    fn.stop()
    return fn.log()


def test_http_lines_carry_either_header_with_the_configured_project(serve) -> None:
    fn = serve({**MISSING_MODEL, "GOOGLE_CLOUD_PROJECT": "my-project"}, wait="/healthz")
    first, second, third = lines_with(_failing_requests(fn), "503 model load failed")
    assert first["logging.googleapis.com/trace"] == f"projects/my-project/traces/{TRACE}"
    assert first["logging.googleapis.com/spanId"] == SPAN
    assert first["logging.googleapis.com/trace_sampled"] is True
    assert second["logging.googleapis.com/trace"] == \
        "projects/my-project/traces/105445aa7843bc8bf206b12000100000"
    assert second["logging.googleapis.com/spanId"] == "000000000000004a"
    assert not any(k.startswith("logging.googleapis.com/trace") for k in third)  # no header


def test_on_google_cloud_the_project_comes_from_the_metadata_server(serve,
                                                                  metadata_server: str) -> None:
    _Metadata.asked.clear()
    fn = serve({**MISSING_MODEL, "K_SERVICE": "svc", "GCE_METADATA_HOST": metadata_server},
               wait="/healthz")
    first, *_ = lines_with(_failing_requests(fn), "503 model load failed")
    assert first["logging.googleapis.com/trace"] == f"projects/metadata-project/traces/{TRACE}"
    assert _Metadata.asked == ["/computeMetadata/v1/project/project-id"]  # once, by the worker


def test_off_google_cloud_nothing_is_asked_and_the_trace_id_is_bare(serve,
                                                                   metadata_server: str) -> None:
    _Metadata.asked.clear()
    fn = serve({**MISSING_MODEL, "GCE_METADATA_HOST": metadata_server}, wait="/healthz")
    first, *_ = lines_with(_failing_requests(fn), "503 model load failed")
    assert first["logging.googleapis.com/trace"] == TRACE
    assert _Metadata.asked == []


# -- events on the production server ----------------------------------------------------------
def test_pubsub_and_cloudevent_lines_carry_their_trace_and_the_model(serve,
                                                                    tmp_path: Path) -> None:
    fn = serve({"LOG_FORMAT": "json", "GOOGLE_CLOUD_PROJECT": "p",
                "MESSAGE_OUTPUT_URI": str(tmp_path / "results")},
               target="on_pubsub_message", wait=None)
    push = pubsub_push(b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}', "msg-with-trace")
    push["message"]["attributes"]["googclient_traceparent"] = TRACEPARENT
    assert fn.post("/", json=push).status_code == 200
    event = load("pubsub_published.json")
    event["id"] = "ce-with-trace"
    event["data"]["message"]["messageId"] = "ce-with-trace"
    headers = {f"ce-{k}": str(v) for k, v in event.items() if k not in ("data", "datacontenttype")}
    headers |= {"ce-traceparent": f"00-{'1' * 32}-{'2' * 16}-01",
                "Content-Type": "application/json"}
    assert fn.post("/", data=json.dumps(event["data"]), headers=headers).status_code == 200
    fn.stop()
    log = fn.log()
    [message] = lines_with(log, "msg-with-trace: scored")
    assert message["logging.googleapis.com/trace"] == f"projects/p/traces/{TRACE}"
    assert message["logging.googleapis.com/spanId"] == SPAN
    assert (message["model"], message["model_version"]) == ("iris", "1")
    [cloud_event] = lines_with(log, "ce-with-trace: scored")
    assert cloud_event["logging.googleapis.com/trace"] == f"projects/p/traces/{'1' * 32}"
    assert cloud_event["logging.googleapis.com/spanId"] == "2" * 16


# -- Lambda -----------------------------------------------------------------------------------
@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The package's log lines as the JSON formatter writes them, in this process."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("functions")
    logger.addHandler(handler)
    yield out
    logger.removeHandler(handler)


def test_lambda_lines_carry_the_xray_trace_and_the_record_index(
        aws_lambda, monkeypatch: pytest.MonkeyPatch, json_log: io.StringIO,
        tmp_path: Path) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={XRAY_ROOT};Parent=53995c3f42cd8ad8;Sampled=1")
    record = load("sqs_receive.json")["Records"][0]
    second = json.loads(json.dumps(record))
    second["messageId"] = "second-record"
    second["body"] = "not json"  # poison: kept, logged at ERROR
    sent_root = "1-67891233-abcdef012345678912345678"
    second["attributes"]["AWSTraceHeader"] = f"Root={sent_root};Parent=0123456789abcdef;Sampled=1"
    answer = lambda_handler()({"Records": [record, second]}, None)
    assert answer == {"batchItemFailures": []}
    first_line, = lines_with(json_log.getvalue(), record["messageId"])
    second_line, = lines_with(json_log.getvalue(), "second-record")
    assert first_line["xray_trace_id"] == XRAY_ROOT and first_line["item"] == 0
    assert first_line["model_version"] == "1"
    assert second_line["xray_trace_id"] == sent_root and second_line["item"] == 1
    assert not any(k.startswith("logging.googleapis.com/trace") for k in first_line)
    monkeypatch.delenv("_X_AMZN_TRACE_ID")  # the next invocation has none: nothing left behind
    record["messageId"] = "untraced-record"
    assert lambda_handler()({"Records": [record]}, None) == {"batchItemFailures": []}
    untraced, = lines_with(json_log.getvalue(), "untraced-record")
    assert "xray_trace_id" not in untraced and untraced["item"] == 0
