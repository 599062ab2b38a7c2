"""Issue 7 benchmark: 1,000-row batches via Open Inference Protocol binary vs JSON vs in-process.

    .venv/bin/python -m benchmarks.oip_bench [--reps 500] [--rows 1000]

One run, one machine, the bundled iris model, the same 1,000 distinct rows everywhere:

- ``v2_binary``: POST /v2/models/iris/infer, FP32 input and outputs as raw bytes
- ``v2_json``: the same request with JSON ``data`` in and out
- ``predict_json``: POST /predict with ``{"instances": [...]}``
- ``adapter_in_process``: v2 payloads + core (decode, dedupe, run, encode) called directly,
  no HTTP: what our code adds on top of onnxruntime
- ``onnxruntime``: ``session.run`` alone, with the function's session options
- ``http_floor``: GET /v2/health/live on the same connection, as if each batch cost only the
  round trip through functions-framework: the transport's share, no work at all

Requests go one at a time over one keep-alive connection (http.client); bodies are encoded
once up front and each answer is decoded (as a client would). Prints rows/s and ratios;
writes benchmarks/results/oip.json.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import onnxruntime as ort
import orjson
from functions.oip.inference import infer_feeds

from benchmarks.harness import ROOT, save, spawn, stop
from functions.codecs.v2 import HEADER_LENGTH, decode_request, encode_response
from functions.config.card import ModelCard
from functions.config.settings import Settings
from functions.loading.holder import ModelHolder
from functions.loading.stores import Stores
from functions.model.onnx_model import OnnxModel
from functions.model.runner import Runners
from functions.model.sessions import session_options
from functions.service import PredictionService
from tests.servers import wait_http

MODEL = ROOT / "models" / "iris.onnx"
CARD = ROOT / "models" / "iris.card.json"


def make_rows(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)  # distinct rows: dedupe saves nothing, measures its cost
    return rng.uniform(0.1, 7.0, size=(n, 4)).astype(np.float32)


def v2_binary_body(rows: np.ndarray) -> tuple[bytes, dict[str, str]]:
    head = orjson.dumps({"inputs": [{"name": "input", "datatype": "FP32",
                                     "shape": list(rows.shape),
                                     "parameters": {"binary_data_size": rows.nbytes}}],
                         "parameters": {"binary_data_output": True}})
    return head + rows.tobytes(), {HEADER_LENGTH: str(len(head)),
                                   "Content-Type": "application/octet-stream"}


def v2_json_body(rows: np.ndarray) -> bytes:
    return orjson.dumps({"inputs": [{"name": "input", "datatype": "FP32",
                                     "shape": list(rows.shape), "data": rows.ravel().tolist()}]})


Batches = Callable[[int], None]
"""Runs ``n`` batches through one path."""


def repeat(call: Callable[[], object]) -> Batches:
    def run(n: int) -> None:
        for _ in range(n):
            call()
    return run


def measure(paths: dict[str, Batches], reps: int, rounds: int, rows: int) -> dict[str, float]:
    """Median rows/s per path over ``rounds`` interleaved rounds of ``reps // rounds`` batches.

    Interleaving spreads whatever else the machine does evenly over the paths.
    """
    per_round = max(1, reps // rounds)
    for run in paths.values():
        run(10)  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, run in paths.items():
            t0 = time.perf_counter()
            run(per_round)
            samples[name].append(per_round * rows / (time.perf_counter() - t0))
    return {name: statistics.median(values) for name, values in samples.items()}


@contextmanager
def http_paths(rows: np.ndarray) -> Iterator[dict[str, Batches]]:
    """The function under functions-framework, and one path per way of calling it."""
    proc, url = spawn(str(ROOT / "main.py"))
    host, port = url.removeprefix("http://").split(":")
    # http.client sends headers and body in one write and adds ~0.3 ms per call; requests
    # adds ~2 ms here, which would measure the client rather than the function.
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        wait_http(url + "/v2/health/ready", proc=proc)
        conn.connect()  # no Nagle: the body follows the headers in a second write
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        binary, headers = v2_binary_body(rows)
        json_hdrs = {"Content-Type": "application/json"}
        as_json, predict = v2_json_body(rows), orjson.dumps({"instances": rows.tolist()})
        infer = "/v2/models/iris/infer"

        def call(method: str, path: str, body: bytes | None = None,
                 hdrs: dict[str, str] | None = None) -> tuple[bytes, str | None]:
            conn.request(method, path, body, hdrs or {})
            resp = conn.getresponse()
            content = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{path}: {resp.status} {content[:300]!r}")
            return content, resp.getheader(HEADER_LENGTH)

        def v2_bin() -> None:
            content, n = call("POST", infer, binary, headers)
            orjson.loads(content[: int(n)])
            np.frombuffer(content, dtype="<i8", count=len(rows), offset=int(n))

        yield {
            "http_floor": repeat(lambda: call("GET", "/v2/health/live")),
            "v2_binary": repeat(v2_bin),
            "v2_json": repeat(lambda: orjson.loads(call("POST", infer, as_json, json_hdrs)[0])),
            "predict_json": repeat(
                lambda: orjson.loads(call("POST", "/predict", predict, json_hdrs)[0])),
        }
    finally:
        conn.close()
        stop(proc)


def in_process_paths(rows: np.ndarray, loop: asyncio.AbstractEventLoop) -> dict[str, Batches]:
    """Our v2 payload decoding + core without HTTP, and onnxruntime alone."""
    settings = Settings(model_uri=str(MODEL))
    model = OnnxModel(MODEL, ModelCard.from_json(CARD.read_bytes()), settings)
    service = PredictionService(ModelHolder(settings, Stores()),
                                Runners(settings))
    body, headers = v2_binary_body(rows)

    async def adapter(n: int) -> None:
        for _ in range(n):
            request = decode_request(body, headers[HEADER_LENGTH], model)
            encode_response(model, request, await infer_feeds(service, model, request.feeds))

    session = ort.InferenceSession(str(MODEL), session_options(settings),
                                   providers=["CPUExecutionProvider"])
    return {"adapter_in_process": lambda n: loop.run_until_complete(adapter(n)),
            "onnxruntime": repeat(lambda: session.run(None, {"input": rows}))}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=500, help="batches per measurement")
    parser.add_argument("--rows", type=int, default=1000, help="rows per batch")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    args = parser.parse_args(argv)
    rows = make_rows(args.rows)
    loop = asyncio.new_event_loop()
    try:
        with http_paths(rows) as paths:
            paths.update(in_process_paths(rows, loop))
            rates = measure(paths, args.reps, args.rounds, args.rows)
    finally:
        loop.close()
    base = rates["onnxruntime"]
    result = {"rows_per_batch": args.rows, "batches": args.reps, "rounds": args.rounds,
              "rows_per_s": rates,
              "onnxruntime_over": {k: base / v for k, v in rates.items()},
              "v2_binary_speedup_over_predict_json": rates["v2_binary"] / rates["predict_json"]}
    print(f"{'path':<20}{'rows/s':>14}{'ms/batch':>10}{'ORT / this':>12}")
    for name, value in rates.items():
        print(f"{name:<20}{value:>14,.0f}{1000 * args.rows / value:>10.3f}{base / value:>12.2f}")
    print(f"v2 binary is {result['v2_binary_speedup_over_predict_json']:.2f}x /predict JSON")
    print("saved", save("oip", result))
    return result


if __name__ == "__main__":
    print(json.dumps(main()["rows_per_s"]))
