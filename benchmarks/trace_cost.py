"""What trace handling costs per request, in process: main.py's ASGI app driven directly
(no socket, no HTTP client) with one-row /predict requests on the demo model.

Variants, interleaved round by round (ABC, then CBA) in one process so the machine's load
hits them alike:

    absent   Cloud Run's usual headers and two others, no trace header
    present  the same plus ``traceparent`` and ``X-Cloud-Trace-Context`` (log correlation:
             always on)
    traced   present, with OpenTelemetry on and every request sampled (spans built and
             handed to a batching processor whose exporter drops them, flushed before
             the round's clock stops: the SDK's cost, not the network's)
    unsampled  tracing on, the caller's ``traceparent`` says not sampled (the SDK's
             non-recording spans: what most requests cost where the platform samples)

    .venv/bin/python -m benchmarks.trace_cost [--rounds 15] [--requests 2000]

Prints the median time per request of each and the differences to ``absent``, and the
Router's trace hook alone (``timeit``: header scan, context-variable set and reset), where
whole requests are too noisy to resolve a microsecond (docs/tracing.md).

``--served`` measures served requests instead: benchmarks.single_row_quick (wrk, rounds
alternating) with the function as is and with OTEL_TRACES_EXPORTER=otlp exporting to a
local OTLP/HTTP sink in this process, beside the tuned handler.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from typing import Any

from benchmarks.harness import ROOT, SETOSA

BODY = b'{"instances": [[%s]]}' % ",".join(map(str, SETOSA)).encode()
COMMON = [(b"host", b"svc-abc123-uc.a.run.app"), (b"user-agent", b"python-requests/2.32"),
          (b"accept", b"*/*"), (b"accept-encoding", b"gzip, deflate"),
          (b"content-type", b"application/json"),
          (b"content-length", str(len(BODY)).encode()),
          (b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https"),
          (b"forwarded", b'for="203.0.113.7";proto=https')]
TRACE = [(b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
         (b"x-cloud-trace-context", b"0af7651916cd43dd8448eb211c80319c/13235141592653589793;o=1")]
UNSAMPLED = [(b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")]
OTHER = [(b"x-request-tag", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
         (b"x-client-version", b"0af7651916cd43dd8448eb211c80319c/13235141592653589793;o=1")]
"""As many headers of the same sizes, not trace headers: ``absent`` sends these, so the
difference is the trace headers' handling, not two more headers for Starlette to carry."""


def scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": "POST", "scheme": "https", "path": "/predict",
            "raw_path": b"/predict", "query_string": b"", "root_path": "",
            "headers": headers, "client": ("169.254.1.1", 40000),
            "server": ("127.0.0.1", 8080)}


async def drive(app: Any, headers: list[tuple[bytes, bytes]], n: int) -> float:
    """Seconds per request over ``n`` sequential requests."""
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    started = time.perf_counter()
    for _ in range(n):
        await app(scope(list(headers)), receive, send)
    elapsed = time.perf_counter() - started
    if set(status) != {200}:
        raise RuntimeError(f"answers {sorted(set(status))}, not 200")
    return elapsed / n


def discarding_tracing() -> Any:
    """Tracing on, every request sampled, spans dropped by the exporter."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from functions.telemetry.tracing import Tracing

    class Drop(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=1 << 20))
    return Tracing(provider)


def hook_cost(number: int = 200_000) -> dict[str, float]:
    """Nanoseconds of the Router's trace hook per request, header absent and present."""
    import timeit

    from functions.telemetry.context import HEADER, find

    def hook(headers: list[tuple[bytes, bytes]]) -> None:
        header = find(headers)
        token = HEADER.set(header) if header is not None else None
        if token is not None:
            HEADER.reset(token)

    return {name: min(timeit.repeat(lambda h=headers: hook(h), number=number, repeat=7))
            / number * 1e9 for name, headers in (("absent", COMMON + OTHER),
                                                 ("present", COMMON + TRACE))}


def served_cost(rounds: int, seconds: int) -> None:
    """single_row_quick with tracing off and on (OTLP/HTTP to a sink here)."""
    import http.server
    import os
    import threading

    from benchmarks import single_row_quick

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink.server_address[1]}"
    try:
        single_row_quick.main(["--rounds", str(rounds), "--seconds", str(seconds),
                               "--variant", "OTEL_TRACES_EXPORTER=otlp"])
    finally:
        sink.shutdown()


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--served", action="store_true")
    parser.add_argument("--seconds", type=int, default=3, help="per wrk run (--served)")
    args = parser.parse_args(argv)
    if args.served:
        served_cost(args.rounds, args.seconds)
        return {}
    import functions_framework.aio

    from functions import telemetry

    app = functions_framework.aio.create_asgi_app(target="predict", source=str(ROOT / "main.py"))
    import main as served  # the copy create_asgi_app loaded

    while served._rt.holder.model is None:
        time.sleep(0.05)
    tracing = discarding_tracing()
    variants = {"absent": (COMMON + OTHER, None), "present": (COMMON + TRACE, None),
                "traced": (COMMON + TRACE, tracing),
                "unsampled": (COMMON + UNSAMPLED + OTHER[1:], tracing)}
    times: dict[str, list[float]] = {name: [] for name in variants}

    async def run() -> None:
        for name, (headers, _) in variants.items():  # warm every path once
            telemetry.tracer = variants[name][1]
            await drive(app, headers, 200)
        for round_ in range(args.rounds):
            order = list(variants.items())
            for name, (headers, tracer) in order[::-1] if round_ % 2 else order:
                telemetry.tracer = tracer
                started = time.perf_counter()
                await drive(app, headers, args.requests)
                if tracer is not None:  # the export thread's share of the work included
                    tracer.provider.force_flush()
                times[name].append((time.perf_counter() - started) / args.requests)
        telemetry.tracer = None

    asyncio.run(run())
    tracing.close()
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        deltas = [(a - b) * 1e6 for a, b in zip(t, times["absent"])]
        print(f"{name:9s} {medians[name] * 1e6:8.2f} us/request  "
              f"{statistics.median(deltas):+6.2f} us vs absent (median of {len(t)} paired "
              f"rounds; ratio {medians[name] / medians['absent']:.3f})")
    for name, ns in hook_cost().items():
        print(f"hook      {ns / 1e3:8.3f} us/request with the trace header {name}")
    return medians


if __name__ == "__main__":
    main()
