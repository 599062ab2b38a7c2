"""REQUESTS_MEMORY_MB on the protocol routes (functions.http.admission): /v1/embeddings and
/v2 infer are charged to the same bound as /predict, through the real app serving
all-MiniLM-L6-v2 with a tiny budget. A request whose bound is over the whole budget runs
alone and is answered; while it holds the budget a second large one waits and is answered
503 with a Retry-After in its protocol's error shape; the budget is given back afterwards;
a gzip body is charged as one of unknown length, then on what it inflates to.

Requests go to the raw ASGI app on this thread's loop, so a test decides when a body
arrives and when an answer's bytes are taken: what a request holds meanwhile is read from
``admission_held_bytes`` in /metrics."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from functions.http.admission import BYTE_BOUND
from tests import minilm
from tests.inprocess import InProcess, environment, start_in_process

BUDGET = 16 << 20  # REQUESTS_MEMORY_MB's least
LARGE_LANE = BUDGET - BUDGET // 8
WAIT = 0.5
TEXTS = [f"Sentence number {i} is about {word}." for i, word in
         enumerate(["food", "horses", "movies", "clouds", "rivers", "trains"] * 20)]
INFER = "/v2/models/minilm/infer"


@pytest.fixture(scope="module")
def fn(minilm_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    served = start_in_process({"MODEL_URI": str(minilm_model), "REQUESTS_MEMORY_MB": "16",
                               "ADMISSION_WAIT_SECONDS": str(WAIT)},
                              tmp_path_factory.mktemp("admission-protocols"), timeout=120)
    yield served
    served.stop()


@pytest.fixture(scope="module")
def tokenizer(minilm_model: Path) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(minilm_model.parent / "minilm.tokenizer.json"))


class Exchange:
    """One request to the raw ASGI app: its body sent once ``body`` is set (at once if not
    given), its answer's bytes taken once ``take`` is set; ``answering`` is set when the
    answer starts (the request is decoded and scored by then)."""

    def __init__(self, method: str, path: str, body: bytes = b"",
                 headers: dict[str, str] | None = None, body_gate: bool = False,
                 take_gate: bool = False) -> None:
        self.scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                      "method": method, "scheme": "http", "path": path,
                      "raw_path": path.encode(), "query_string": b"", "root_path": "",
                      "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
                      "headers": [(b"host", b"x")] + [
                          (k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
        self.content = body
        self.body = asyncio.Event()
        self.take = asyncio.Event()
        self.answering = asyncio.Event()
        if not body_gate:
            self.body.set()
        if not take_gate:
            self.take.set()
        self.status = 0
        self.headers: dict[str, str] = {}
        self.answer = b""

    async def run(self, app: Any) -> Exchange:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:  # nothing more to read: the client stays connected
                await asyncio.Event().wait()
            await self.body.wait()
            sent = True
            return {"type": "http.request", "body": self.content, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
                self.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
                self.answering.set()
            else:
                await self.take.wait()
                self.answer += message.get("body", b"")

        await app(self.scope, receive, send)
        return self

    def json(self) -> Any:
        return orjson.loads(self.answer)


async def held(app: Any) -> int:
    """``admission_held_bytes`` from /metrics."""
    metrics = (await Exchange("GET", "/metrics").run(app)).answer.decode()
    return int(float(next(line.split()[-1] for line in metrics.splitlines()
                          if line.startswith("admission_held_bytes "))))


async def until_held(app: Any, want: int) -> None:
    for _ in range(500):
        if await held(app) == want:
            return
        await asyncio.sleep(0.01)
    assert await held(app) == want


def embeddings_body(texts: list[str]) -> bytes:
    return orjson.dumps({"model": "minilm", "input": texts})


def infer_body(tokenizer: Any, texts: list[str], padding: int = 0) -> bytes:
    """A v2 request of ``texts``' token ids (padded to the longest), ``padding`` spaces of
    JSON whitespace after it."""
    encoded = tokenizer.encode_batch(texts)
    width = max(len(e.ids) for e in encoded)
    ids = np.zeros((len(texts), width), np.int64)
    mask = np.zeros_like(ids)
    for row, e in enumerate(encoded):
        ids[row, :len(e.ids)], mask[row, :len(e.ids)] = e.ids, 1
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    return orjson.dumps({"inputs": [
        {"name": name, "datatype": "INT64", "shape": list(a.shape), "data": a.ravel().tolist()}
        for name, a in feeds.items()]}) + b" " * padding


def embeddings_of(route: str, answer: Any) -> np.ndarray:
    if route == INFER:
        (output,) = answer["outputs"]
        return np.array(output["data"]).reshape(output["shape"])
    return np.array([item["embedding"] for item in answer["data"]])


def post(route: str, body: bytes, **gates: bool) -> Exchange:
    return Exchange("POST", route, body, {"content-type": "application/json",
                                          "content-length": str(len(body))}, **gates)


def request(route: str, tokenizer: Any, texts: list[str], **gates: bool) -> Exchange:
    body = infer_body(tokenizer, texts) if route == INFER else embeddings_body(texts)
    return post(route, body, **gates)


def overloaded(route: str, refused: Exchange) -> None:
    """503 with a Retry-After, in the route's protocol's error shape."""
    assert refused.status == 503, refused.answer
    assert refused.headers["retry-after"] == "1"
    error = refused.json()["error"]
    if route == INFER:
        assert isinstance(error, str) and "memory for requests in flight" in error
    elif route == "/predict":
        assert error["code"] == "overloaded"
    else:
        assert error["type"] == "server_error" and error["code"] == "overloaded"
        assert error["param"] is None and "memory for requests in flight" in error["message"]


@pytest.mark.parametrize("route", ["/v1/embeddings", INFER])
def test_a_request_over_the_budget_runs_alone_and_the_next_large_one_waits_then_503(
        fn: InProcess, tokenizer: Any, route: str) -> None:
    app = fn.client.app
    big = TEXTS[:120] if route != INFER else TEXTS[:24]  # bound past the whole budget
    others = TEXTS[:6]
    want = minilm.reference(big)

    async def scenario() -> None:
        first = request(route, tokenizer, big, body_gate=True)
        assert len(first.content) * BYTE_BOUND > BUDGET
        running = asyncio.create_task(first.run(app))
        await until_held(app, LARGE_LANE)  # let in at once: the whole large lane, alone
        second = request(route, tokenizer, others)
        same_budget = post("/predict", orjson.dumps({"instances": others}))  # its lanes too
        started = time.monotonic()
        refused, predict_refused = await asyncio.gather(second.run(app),
                                                        same_budget.run(app))
        assert time.monotonic() - started >= WAIT  # refused once its wait ran out
        overloaded(route, refused)
        overloaded("/predict", predict_refused)
        assert not running.done()
        first.body.set()
        answered = await running
        assert answered.status == 200, answered.answer
        assert np.abs(embeddings_of(route, answered.json()) - want).max() < 1e-4
        assert await held(app) == 0  # given back
        again = await request(route, tokenizer, others).run(app)  # as Retry-After says
        assert again.status == 200, again.answer
        assert np.abs(embeddings_of(route, again.json()) - want[:6]).max() < 1e-4
        assert await held(app) == 0

    with environment(fn.full_env):
        asyncio.run(scenario())


def test_a_gzip_body_is_charged_as_unknown_then_on_its_inflated_size(
        fn: InProcess, tokenizer: Any) -> None:
    app = fn.client.app
    raw = infer_body(tokenizer, TEXTS[:1], padding=512 << 10)  # 512 KiB of JSON whitespace
    body = gzip.compress(raw)
    assert len(body) * BYTE_BOUND < LARGE_LANE // 2  # its length would bound far less
    want = minilm.reference(TEXTS[:1])

    async def scenario() -> None:
        exchange = Exchange("POST", INFER, body, {
            "content-type": "application/json", "content-encoding": "gzip",
            "content-length": str(len(body))}, body_gate=True, take_gate=True)
        running = asyncio.create_task(exchange.run(app))
        await until_held(app, LARGE_LANE)  # unread: as large as any body may inflate
        exchange.body.set()
        await exchange.answering.wait()
        charged = await held(app)  # decoded and scored, its answer not yet sent
        assert 2 * len(raw) <= charged < 2 * len(raw) + 64 * 1024, charged
        exchange.take.set()
        answered = await running
        assert answered.status == 200, answered.answer
        assert np.abs(embeddings_of(INFER, answered.json()) - want).max() < 1e-4
        assert await held(app) == 0

    with environment(fn.full_env):
        asyncio.run(scenario())


def test_the_document_says_a_prediction_routes_503_may_mean_overloaded(fn: InProcess) -> None:
    paths = fn.get("/openapi.json").json()["paths"]
    infer = next(p for p in paths if p.startswith("/v2/models/") and p.endswith("/infer"))
    for path in ("/predict", "/batch-predict", "/v1/embeddings", infer):
        why = paths[path]["post"]["responses"]["503"]["description"]
        assert "overloaded" in why and "Retry-After" in why, (path, why)
