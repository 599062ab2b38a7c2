"""OpenTelemetry spans, recorded by the real SDK: in process with an in-memory exporter (the
span tree of a request, cold start, a merged model call's links both ways, lookups with
``traceparent`` sent to the feature service, events per message and per chunk), and a
real OTLP/HTTP round trip from the production server to a local receiver that decodes the
protobuf with opentelemetry-proto. With tracing off (the default) no SDK is imported."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from functions import telemetry
from functions.telemetry.tracing import Tracing
from tests.feature_service import lookup_card, profile, sepal_lookup
from tests.inprocess import start_in_process
from tests.servers import ROOT

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process, every span kept in memory (the SDK's own exporter)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.tracer = Tracing(provider)
    yield exporter
    telemetry.tracer.close()
    telemetry.tracer = None


def named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name == name]


def children(spans: InMemorySpanExporter, parent: ReadableSpan) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans.get_finished_spans()
            if s.parent is not None and s.parent.span_id == parent.context.span_id}


def test_a_request_continues_the_callers_trace_with_its_steps(spans, tmp_path: Path) -> None:
    fn = start_in_process({}, tmp_path)
    try:
        resp = fn.post("/predict", json={"instances": [ROW]},
                       headers={"traceparent": f"00-{TRACE}-{SPAN}-01"})
        assert resp.status_code == 200
        [server] = named(spans, "POST /predict")
        assert f"{server.context.trace_id:032x}" == TRACE
        assert f"{server.parent.span_id:016x}" == SPAN and server.parent.is_remote
        assert server.attributes["http.response.status_code"] == 200
        steps = children(spans, server)
        assert set(steps) == {"decode", "model.call", "encode"}
        assert steps["model.call"].attributes["model.rows"] == 1
        decode, call, encode = steps["decode"], steps["model.call"], steps["encode"]
        assert server.start_time <= decode.start_time <= decode.end_time <= call.start_time
        assert call.end_time <= encode.start_time <= encode.end_time <= server.end_time
        # cold start: one tree under model.load, which ends after the model is served
        # (model.prepare runs once requests are already answered): wait for it to close
        deadline = time.monotonic() + 10
        while not named(spans, "model.load") and time.monotonic() < deadline:
            time.sleep(0.01)
        [load] = named(spans, "model.load")
        assert {"model.download", "session.build",  # sha256: in download; no tokenizer
                "warmup", "model.prepare"} <= set(children(spans, load))  # (a tabular model)
        spans.clear()
        fn.post("/predict", json={"instances": [ROW]},
                headers={"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/74;o=1"})
        [server] = named(spans, "POST /predict")
        assert f"{server.context.trace_id:032x}" == "105445aa7843bc8bf206b12000100000"
        assert server.parent.span_id == 74
        spans.clear()
        fn.post("/predict", json={"instances": [ROW]},
                headers={"traceparent": f"00-{TRACE}-{SPAN}-00"})  # the caller did not sample
        assert spans.get_finished_spans() == ()
    finally:
        fn.stop()


def test_a_text_models_tokenizer_fetch_is_traced_under_the_load(spans, built_model,
                                                                  tmp_path: Path) -> None:
    path, _ = built_model("bert")  # its tokenizer is fetched in a thread beside the model
    fn = start_in_process({"MODEL_URI": str(path)}, tmp_path)
    try:
        deadline = time.monotonic() + 10
        while not named(spans, "model.load") and time.monotonic() < deadline:
            time.sleep(0.01)
        [load] = named(spans, "model.load")
        steps = children(spans, load)
        assert {"tokenizer.fetch", "model.download", "session.build"} <= set(steps), steps
        fetch = steps["tokenizer.fetch"]
        assert load.start_time <= fetch.start_time <= fetch.end_time <= \
            steps["session.build"].start_time  # fetched, and joined, before the build
    finally:
        fn.stop()


def test_a_merged_call_links_every_request_and_each_links_back(spans, tmp_path: Path) -> None:
    fn = start_in_process({"BATCHING": "on", "INLINE_BUDGET_MS": "0"}, tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not fn.get("/model").json()["batching"]["merging"]:  # calibrated
            assert time.monotonic() < deadline
            time.sleep(0.05)
        spans.clear()
        traces = [f"{i + 1:032x}" for i in range(24)]
        sent = fn.concurrently("POST", "/predict", [  # distinct rows: none deduplicated
            {"json": {"instances": [[5.0 + i / 100, 3.5, 1.4, 0.2]]},
             "headers": {"traceparent": f"00-{t}-{SPAN}-01"}} for i, t in enumerate(traces)])
        assert all(r.status_code == 200 for r in sent)
        queued = {s.context.span_id: s for s in named(spans, "model.queue")}
        batches = [b for b in named(spans, "model.batch") if b.attributes["batch.requests"] > 1]
        assert batches, "no two requests were merged"
        servers = {s.context.span_id: s for s in named(spans, "POST /predict")}
        for batch in batches:
            assert batch.parent is None  # a trace of its own
            assert len(batch.links) == batch.attributes["batch.requests"]
            assert children(spans, batch)["model.call"].attributes["model.rows"] == \
                batch.attributes["batch.rows"]
            for link in batch.links:
                queue = queued[link.context.span_id]
                assert [back.context.span_id for back in queue.links] == [batch.context.span_id]
                server = servers[queue.parent.span_id]  # the request it waited for
                assert f"{server.context.trace_id:032x}" in traces
                assert f"{queue.context.trace_id:032x}" == f"{server.context.trace_id:032x}"
    finally:
        fn.stop()


def _answer(handler: http.server.BaseHTTPRequestHandler, body: bytes, content_type: str) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class _Features(http.server.BaseHTTPRequestHandler):
    """A feature service that records the trace header of every call."""

    seen: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).seen.append(self.headers.get("traceparent"))
        sl, sw, _, _ = profile(self.path.rsplit("/", 1)[-1])
        _answer(self, json.dumps({"sepal": {"length": sl, "width": sw}}).encode(),
                "application/json")

    def log_message(self, *args: Any) -> None:
        pass


def test_lookups_count_cache_hits_and_send_traceparent(spans, tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Features)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    card = lookup_card(tmp_path / "card.json",
                       [sepal_lookup(f"http://127.0.0.1:{server.server_address[1]}")])
    fn = start_in_process({"MODEL_CARD_URI": str(card)}, tmp_path)
    try:
        _Features.seen.clear()
        rows = [{"user_id": k, "petal_length": 1.4, "petal_width": 0.2} for k in ("a", "b", "a")]
        for _ in range(2):  # the second time every key is cached
            resp = fn.post("/predict", json={"instances": rows},
                           headers={"traceparent": f"00-{TRACE}-{SPAN}-01"})
            assert resp.status_code == 200, resp.text
        first, second = named(spans, "lookups")
        assert (first.attributes["lookup.cache_hits"], first.attributes["lookup.cache_misses"]) \
            == (0, 2)
        assert (second.attributes["lookup.cache_hits"], second.attributes["lookup.cache_misses"]) \
            == (2, 0)
        calls = named(spans, "lookup")
        assert len(calls) == 2 and all(c.parent.span_id == first.context.span_id for c in calls)
        assert {c.kind.name for c in calls} == {"CLIENT"}
        assert sorted(_Features.seen) == sorted(
            f"00-{TRACE}-{c.context.span_id:016x}-01" for c in calls)  # joined the trace
    finally:
        fn.stop()
        server.shutdown()
        server.server_close()


def test_a_message_is_one_span_and_each_chunk_of_it_another(spans, tmp_path: Path) -> None:
    from tests.eventfiles import pubsub_push

    fn = start_in_process({"MESSAGE_OUTPUT_URI": str(tmp_path / "out"), "CHUNK_ROWS": "2"},
                          tmp_path, target="on_pubsub_message", wait=None)
    try:
        push = pubsub_push(json.dumps({"instances": [ROW] * 5}).encode(), "m-1")
        push["message"]["attributes"]["googclient_traceparent"] = f"00-{TRACE}-{SPAN}-01"
        assert fn.post("/", json=push).status_code == 200
        [message] = named(spans, "event pubsub")
        assert f"{message.context.trace_id:032x}" == TRACE
        assert f"{message.parent.span_id:016x}" == SPAN
        assert message.attributes["messaging.message.id"] == "m-1"
        chunks = named(spans, "score.chunk")
        assert [c.attributes["rows"] for c in chunks] == [2, 2, 1]
        assert all(c.parent.span_id == message.context.span_id for c in chunks)
        for chunk in chunks:  # each chunk's model call under it (the runner keeps no context)
            assert "model.call" in children(spans, chunk)
    finally:
        fn.stop()


# -- OTLP/HTTP to a real receiver -------------------------------------------------------------
class _Receiver(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: decodes each export with opentelemetry-proto."""

    spans: list[Any] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        body = self.rfile.read(int(self.headers["Content-Length"]))
        assert self.path == "/v1/traces"
        assert self.headers["Content-Type"] == "application/x-protobuf"
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}
            for scope in resource.scope_spans:
                type(self).spans += [(service, s) for s in scope.spans]
        _answer(self, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")

    def log_message(self, *args: Any) -> None:
        pass


def test_spans_reach_an_otlp_http_receiver_from_the_production_server(serve) -> None:
    _Receiver.spans.clear()
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        fn = serve({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "iris-svc",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_address[1]}",
                    "OTEL_BSP_SCHEDULE_DELAY": "50"})
        resp = fn.post("/predict", json={"instances": [ROW]},
                       headers={"traceparent": f"00-{TRACE}-{SPAN}-01"})
        assert resp.status_code == 200
        deadline = time.monotonic() + 20
        while not any(s.name == "POST /predict" for _, s in _Receiver.spans):
            assert time.monotonic() < deadline, [s.name for _, s in _Receiver.spans]
            time.sleep(0.05)
        fn.stop()
        by_name = {s.name: (service, s) for service, s in _Receiver.spans}
        service, server = by_name["POST /predict"]
        assert service["service.name"] == "iris-svc"
        assert server.trace_id.hex() == TRACE and server.parent_span_id.hex() == SPAN
        assert by_name["model.call"][1].parent_span_id == server.span_id
        assert {"model.load", "session.build", "warmup"} <= set(by_name)  # the worker's
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_with_tracing_off_no_sdk_is_imported() -> None:
    """main.py imported and its model loaded, in a fresh interpreter, without and with
    OTEL_TRACES_EXPORTER: the SDK and the exporter are imported only in the second."""
    probe = ("import sys, time, main\n"
             "while main._rt.holder.model is None: time.sleep(0.01)\n"
             "print(sorted({m.split('.')[1] + '.' + m.split('.')[2] for m in sys.modules"
             " if m.startswith(('opentelemetry.sdk', 'opentelemetry.exporter'))"
             " and m.count('.') >= 2}))")
    found = {}
    hidden = "sys.modules['opentelemetry.sdk'] = None\n"  # as if not installed
    for case, exporter, prelude in (("off", "none", ""), ("on", "otlp", ""),
                                    ("missing", "otlp", hidden)):
        out = subprocess.run([sys.executable, "-c", "import sys\n" + prelude + probe], cwd=ROOT,
                             capture_output=True, text=True, timeout=120, check=True,
                             env={"PATH": "/usr/bin:/bin", "OTEL_TRACES_EXPORTER": exporter,
                                  "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
        found[case] = (out.stdout.strip().splitlines()[-1], out.stderr)
    assert found["off"][0] == "[]"
    assert "sdk.trace" in found["on"][0] and "exporter.otlp" in found["on"][0]
    # asked for but not installed: the model still loads, untraced, and the log says why
    assert "the OpenTelemetry SDK is not installed" in found["missing"][1]


def test_log_lines_sit_under_the_span_they_were_written_in(spans, tmp_path: Path) -> None:
    import io
    import logging

    from functions.logs import JsonFormatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logging.getLogger("functions").addHandler(handler)
    fn = start_in_process({"MODEL_URI": "/nonexistent/m.onnx", "LOAD_WAIT_SECONDS": "1"},
                          tmp_path, wait=None)
    try:
        resp = fn.post("/predict", json={"instances": [ROW]},
                       headers={"traceparent": f"00-{TRACE}-{SPAN}-01"})
        assert resp.status_code == 503
        [server] = named(spans, "POST /predict")
        # this request's line (another app of this test process may log a 503 meanwhile):
        # the caller's trace id is in it, or no line is found at all
        [line] = [json.loads(x) for x in out.getvalue().splitlines() if "503" in x and TRACE in x]
        assert line["logging.googleapis.com/trace"].endswith(TRACE)
        assert line["logging.googleapis.com/spanId"] == f"{server.context.span_id:016x}" != SPAN
        out.truncate(0)
        out.seek(0)  # a caller that did not sample: no span of ours exists, the line names its
        fn.post("/predict", json={"instances": [ROW]},
                headers={"traceparent": f"00-{TRACE}-{SPAN}-00"})
        [line] = [json.loads(x) for x in out.getvalue().splitlines() if "503" in x and TRACE in x]
        assert line["logging.googleapis.com/spanId"] == SPAN
        assert line["logging.googleapis.com/trace_sampled"] is False
    finally:
        fn.stop()
        logging.getLogger("functions").removeHandler(handler)


def test_a_lambda_invocation_continues_its_xray_trace(spans, aws_lambda,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.eventfiles import lambda_handler, load

    monkeypatch.setenv("_X_AMZN_TRACE_ID",
                       "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    assert lambda_handler()(load("sqs_receive.json"), None) == {"batchItemFailures": []}
    [message] = named(spans, "event sqs")
    assert f"{message.context.trace_id:032x}" == "5759e988bd862e3fe1be46a994272793"
    assert f"{message.parent.span_id:016x}" == "53995c3f42cd8ad8"
    assert message.attributes["batch.item"] == 0
    assert "model.call" in {s.name for s in spans.get_finished_spans()
                            if s.context.trace_id == message.context.trace_id}
