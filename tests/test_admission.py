"""Memory for requests in flight (functions.http.admission), through the real app serving
all-MiniLM-L6-v2: a request over the instance's bound waits, its body unread, and is then
answered like any other; one that would wait past ADMISSION_WAIT_SECONDS is answered 503
``overloaded`` with a Retry-After, never a hang; nothing stays charged afterwards."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from functions.http.admission import BYTE_BOUND, Admission, Overloaded
from functions.http.responses import JSONBytes
from tests import minilm
from tests.inprocess import InProcess
from tests.test_lookups import metric

SENTENCES = [f"Sentence number {i} is about {word}." for i, word in
             enumerate(["food", "horses", "movies", "clouds", "rivers", "trains"] * 40)]


@pytest.fixture(scope="module")
def fn(minilm_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.inprocess import start_in_process

    served = start_in_process({"MODEL_URI": str(minilm_model), "REQUESTS_MEMORY_MB": "64",
                               "ADMISSION_WAIT_SECONDS": "1.5"},
                              tmp_path_factory.mktemp("admission"), timeout=120)
    yield served
    served.stop()


def _embeddings(resp: Any, n: int) -> np.ndarray:
    assert resp.status_code == 200, resp.text
    rows = resp.json()["predictions"]
    assert len(rows) == n
    return np.array([row["embedding"] for row in rows])


async def _trickled(seconds: float) -> AsyncIterator[bytes]:
    """A one-sentence body sent in two parts ``seconds`` apart (chunked: no length)."""
    yield b'{"instances": ['
    await asyncio.sleep(seconds)
    yield orjson.dumps(SENTENCES[0]) + b"]}"


def test_requests_over_the_bound_wait_and_are_answered(fn: InProcess) -> None:
    waits = metric(fn, "admission_waits_total")
    # each body's bound (as if every item were "") is over half the large lane (56 MiB); a
    # body of 4 KB and more is decoded off the event loop, so the second arrives meanwhile
    texts = SENTENCES[:120]
    body = orjson.dumps({"instances": texts})
    first, second = fn.concurrently("POST", "/batch-predict", [
        {"content": body, "headers": {"content-type": "application/json"}}] * 2)
    want = minilm.reference(texts)
    for resp in (first, second):
        assert np.abs(_embeddings(resp, len(texts)) - want).max() < 1e-4
    assert metric(fn, "admission_waits_total") == waits + 1
    assert metric(fn, "admission_held_bytes") == 0


def test_a_wait_past_the_deadline_is_503_with_retry_after(fn: InProcess) -> None:
    overloaded = metric(fn, "admission_overloaded_total")
    started = time.monotonic()
    # a body without a length is charged as the largest: it holds the large lane for 4 s,
    # while a single short text passes in the small lane
    held, refused, single = fn.concurrently("POST", "/predict", [
        {"content": _trickled(4.0), "headers": {"content-type": "application/json"}},
        {"json": {"instances": SENTENCES[:6]}}, {"json": {"instances": ["Hi there."]}}])
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "overloaded"
    assert refused.headers["retry-after"] == "2"
    assert np.abs(_embeddings(held, 1) - minilm.reference(SENTENCES[:1])).max() < 1e-4
    assert np.abs(_embeddings(single, 1) - minilm.reference(["Hi there."])).max() < 1e-4
    assert time.monotonic() - started < 30  # answered, no hang
    assert metric(fn, "admission_overloaded_total") == overloaded + 1
    assert metric(fn, "admission_held_bytes") == 0
    again = fn.post("/predict", json={"instances": SENTENCES[:6]})
    assert np.abs(_embeddings(again, 6) - minilm.reference(SENTENCES[:6])).max() < 1e-4


def test_a_request_refused_413_is_not_charged(fn: InProcess) -> None:
    resp = fn.post("/predict", content=b"{}", headers={"content-type": "application/json",
                                                       "content-length": str(64 << 20)})
    assert resp.status_code == 413
    assert metric(fn, "admission_held_bytes") == 0


class _Body:
    """The server's side of an ASGI request whose body is one empty message."""

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}


def test_each_lane_is_first_come_first_served_and_neither_holds_the_other_up() -> None:
    async def scenario() -> None:
        gate = Admission(6_400_000, 0.2, 1_000_000)  # small: up to 100,000 in 800,000
        order: list[str] = []

        async def waiter(name: str, charge: int) -> None:
            assert await gate.wait(charge, _Body()) == charge  # type: ignore[arg-type]
            order.append(name)

        large = gate.take(b"100", 20_000)  # bound: 50 items of ROW_BYTES, the body x 8
        assert large == 100 * BYTE_BOUND and gate.large.free == 5_600_000 - large
        assert gate.take(b"2000000", 20_000) == 0  # over the body limit: refused, uncharged
        assert gate.take(b"1000", 20_000) == -5_600_000  # bound over the lane: all of it
        tasks = [asyncio.create_task(waiter("huge", 5_600_000))]
        await asyncio.sleep(0)
        assert gate.take(b"100", 20_000) == -large  # fits, but a larger one waits before it
        tasks.append(asyncio.create_task(waiter("medium", large)))
        smalls = [gate.take(b"10", 20_000) for _ in range(9)]  # their own lane: in at once
        assert smalls == [10 * BYTE_BOUND] * 9
        assert gate.take(b"10", 20_000) == -10 * BYTE_BOUND  # that lane is full
        tasks.append(asyncio.create_task(waiter("small", 10 * BYTE_BOUND)))
        await asyncio.sleep(0)
        gate.leave(smalls.pop())
        await asyncio.sleep(0)
        assert order == ["small"]
        gate.leave(large)
        await asyncio.sleep(0)
        assert order == ["small", "huge"]
        released = gate.answered(JSONBytes(b"{}"), 5_600_000)  # the huge one's answer
        assert released.status_code == 200 and released.body == b"{}"
        del released  # never sent (as a Lambda answer): given back all the same
        await asyncio.gather(*tasks)
        assert order == ["small", "huge", "medium"]
        assert gate.held() == large + 9 * 10 * BYTE_BOUND
        refused = asyncio.create_task(waiter("late", 5_600_000))
        await asyncio.sleep(0.3)  # past the deadline: Overloaded, and out of the queue
        with pytest.raises(Overloaded) as caught:
            await refused
        assert caught.value.headers["Retry-After"] == "1"
        assert not gate.large.waiting and gate.held() == large + 9 * 10 * BYTE_BOUND

    asyncio.run(scenario())


@pytest.mark.parametrize("form", ["rows", "columns"])
def test_rows_of_numbers_are_charged_from_their_width_and_that_covers_their_decode(
        form: str) -> None:
    """A 1,000-row /batch-predict body (20,000 items at most) for the 4-feature demo
    classifier is charged from its width, not as
    10,000s of long texts: two at once get in without waiting (the text bound would make
    the second wait), and the charge is over what decoding and answering it allocate."""
    import tracemalloc

    from functions.codecs import vertex
    from functions.codecs.predict_bodies import predict_body
    from functions.codecs.predictions import shape_for
    from functions.config.card import ModelCard
    from functions.config.settings import Settings
    from functions.model.onnx_model import OnnxModel
    from functions.model.runner import Runners
    from functions.service import PredictionService
    from tests.conftest import DEMO_MODEL

    card = ModelCard.from_json(DEMO_MODEL.with_suffix("").with_suffix(".card.json").read_text())
    settings = Settings(batching="off")
    model = OnnxModel(DEMO_MODEL, card, settings)
    service = PredictionService(None, Runners(settings))  # type: ignore[arg-type]  # no
    # holder: the model is given to each call
    rows = [[4 + i % 37 / 10, 2 + i % 23 / 10, 1 + i % 53 / 10, 0.1 + i % 19 / 10]
            for i in range(1000)]
    body = orjson.dumps({"instances": rows} if form == "rows" else
                        {"inputs": {name: [r[j] for r in rows]
                                    for j, name in enumerate(card.feature_names)}})
    gate = Admission(320 << 20, 1.0, 32 << 20)
    declared = str(len(body)).encode()
    assert gate.take(declared, 20_000) > 0 and gate.take(declared, 20_000) < 0  # the text bound
    gate = Admission(320 << 20, 1.0, 32 << 20)
    first, second = gate.take(declared, 20_000, model), gate.take(declared, 20_000, model)
    assert 0 < first == second  # both in at once
    plan = service.plan(model)
    shape_for(model)
    tracemalloc.start()
    try:
        inputs = vertex.decode(body, plan, 1000)
        scored = asyncio.run(service.predict(model, inputs, strict=True))
        answer = orjson.dumps(predict_body(scored))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(orjson.loads(answer)["predictions"]) == 1000
    assert peak + 2 * len(body) <= first, (peak, first)
