"""Concurrent requests merged into one model call: each request gets exactly its own
answers, bad rows fail only their request, a cancelled request leaves its batch intact,
and a roll-out under load never mixes versions in a batch."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from functions.codecs.plans import TensorPlan
from functions.codecs.predict_bodies import items
from functions.config.card import ModelCard
from functions.config.settings import Settings
from functions.model.isolation import MODEL_ERRORS
from functions.model.onnx_model import OnnxModel
from functions.model.runner import ModelRunner
from functions.runtime import build
from tests import model_kinds as mk
from tests.built_models import BuiltModels
from tests.inprocess import start_in_process

TEXTS = mk.TEXTS + ["great", "slow slow slow service", "what a place"]


def test_concurrent_text_requests_each_get_their_own_answers(tmp_path: Path,
                                                            built_model: BuiltModels) -> None:
    """48 requests in flight at once through the real app in process (on its event loop,
    as in a worker), merged by the batcher."""
    path, bert = built_model("bert")
    # calls off the event loop, as a real transformer's (3 ms, over the inline budget) are
    fn = start_in_process({"MODEL_URI": str(path), "BATCHING": "on", "INLINE_BUDGET_MS": "0"},
                          tmp_path)
    try:
        want = dict(zip(TEXTS, mk.reference_embeddings(bert, path.parent / "tokenizer.json",
                                                        TEXTS, 16)))
        answers: dict[int, dict] = {}
        for i in range(48):
            texts = [TEXTS[(i + k) % len(TEXTS)] for k in range(1 + i % 3)]  # duplicates too
            body = texts + ([i] if i % 4 == 0 else [])  # every 4th request has a bad item
            answers[i] = {"texts": texts, "body": body}
        sent = fn.concurrently("POST", "/batch-predict",
                               [{"json": {"instances": a["body"]}} for a in answers.values()])
        for got, resp in zip(answers.values(), sent):
            got["resp"] = resp.json()
        for i, got in answers.items():
            preds = got["resp"]["predictions"]
            assert len(preds) == len(got["body"]), got
            for text, pred in zip(got["texts"], preds):
                assert np.abs(np.array(pred["embedding"]) - want[text]).max() < 1e-4, (i, text)
            assert got["resp"]["errors"] == (1 if i % 4 == 0 else 0)
            if i % 4 == 0:
                assert preds[-1]["error"]["index"] == len(got["body"]) - 1
        batching = fn.get("/model").json()["batching"]
        assert batching["merging"] is True
        assert batching["calls"] < len(answers)  # requests were merged
        assert 'batch_rows_bucket{le="+Inf"}' in fn.get("/metrics").text
    finally:
        fn.stop()


def _runner(path: Path, **settings: object) -> tuple[ModelRunner, TensorPlan]:
    card = ModelCard.from_json(path.with_suffix("").with_suffix(".card.json").read_text())
    s = Settings(batching="on", inline_budget_ms=0, **settings)
    model = OnnxModel(path, card, s)
    runner, plan = ModelRunner(model, s), TensorPlan(model)
    runner.calibrate(plan.sample, plan.pads())
    return runner, plan


def test_a_failure_after_the_measurement_is_logged_and_named(
        built_model: BuiltModels, caplog: pytest.LogCaptureFixture) -> None:
    """A failure in deciding on merging (here: token pads that name no input of the model,
    a plan that does not fit it) is logged at ERROR with its traceback and named in
    /model's reason; the model is served unmerged."""
    path, _ = built_model("two_input")
    card = ModelCard.from_json(path.with_suffix("").with_suffix(".card.json").read_text())
    s = Settings(batching="on", inline_budget_ms=0)
    model = OnnxModel(path, card, s)
    runner, plan = ModelRunner(model, s), TensorPlan(model)
    with caplog.at_level("ERROR", logger="functions.model.runner"):
        runner.calibrate(plan.sample, {"no_such_input": 0})  # nothing escapes it
    assert runner.curve is not None and runner.batcher is None
    assert runner.describe()["reason"].startswith("calibration failed: IndexError")
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.exc_info and "calibration failed" in record.getMessage()
    out = asyncio.run(runner.run(_feeds([1, 2, 3, 4], 1)))
    assert {k: v.shape[0] for k, v in out.items()} == {k: 1 for k in out}


def _feeds(features: list[float], user_id: int) -> dict[str, np.ndarray]:
    return {"features": np.array([features], dtype=np.float32),
            "user_id": np.array([user_id], dtype=np.int64)}


def test_a_cancelled_or_failing_request_leaves_its_batch_intact(
        built_model: BuiltModels) -> None:
    path, predict = built_model("two_input")
    runner, _ = _runner(path)
    assert runner.batcher is not None

    async def scenario() -> list:
        first = asyncio.create_task(runner.run(_feeds([1, 2, 3, 4], 1)))
        await asyncio.sleep(0)  # first is in flight: the next ones queue behind it
        queued = [asyncio.create_task(runner.run(f)) for f in (
            _feeds([5, 6, 7, 8], 2), _feeds([0, 0, 0, 0], 42), _feeds([9, 9, 9, 9], 3))]
        await asyncio.sleep(0)
        queued[0].cancel()
        return await asyncio.gather(first, *queued, return_exceptions=True)

    first, cancelled, bad, good = asyncio.run(scenario())
    assert isinstance(cancelled, asyncio.CancelledError)
    assert isinstance(bad, MODEL_ERRORS)
    expected = predict(np.array([[1, 2, 3, 4], [9, 9, 9, 9]], dtype=np.float32),
                       np.array([1, 3]))
    assert np.allclose(first["value"][:, 0], expected[0], atol=1e-5)
    assert np.allclose(good["value"][:, 0], expected[1], atol=1e-5)


@pytest.mark.parametrize("rows", [1, 3])
def test_roll_out_under_load_never_mixes_versions(tmp_path: Path, rows: int) -> None:
    v1, predict1 = mk.two_input_model(tmp_path / "v1", "1", seed=1)
    v2, predict2 = mk.two_input_model(tmp_path / "v2", "2", seed=2)
    rt = build(Settings(model_uri=str(v1), batching="on", inline_budget_ms=0,
                        model_cache_dir=tmp_path / "cache", warmup=False))
    card2 = ModelCard.from_json(v2.with_suffix("").with_suffix(".card.json").read_text())
    model2 = OnnxModel(v2, card2, rt.settings)
    rng = np.random.default_rng(0)
    batches = [rng.random((rows, 4)).astype(np.float32) for _ in range(60)]
    ids = [rng.integers(0, 10, rows) for _ in range(60)]

    async def scenario() -> list:
        await rt.holder.get()
        tasks = []
        for k, (x, u) in enumerate(zip(batches, ids)):
            if k == 30:
                rt.holder.swap(model2)
            instances = [{"features": x[j].tolist(), "user_id": int(u[j])} for j in range(rows)]
            tasks.append(asyncio.create_task(request(instances)))
            await asyncio.sleep(0)
        return await asyncio.gather(*tasks)

    async def request(instances: list) -> tuple[str, list]:
        """What a route does: the model of the moment, its plan, the service, the rows."""
        model = await rt.service.model()
        inputs = rt.service.plan(model).decode(instances)
        scored = await rt.service.predict(model, inputs, strict=True)
        return scored.model.card.version, items(scored)

    results = asyncio.run(scenario())
    versions = {version for version, _ in results}
    assert versions == {"1", "2"}
    for (version, answers), x, u in zip(results, batches, ids):
        predict = predict1 if version == "1" else predict2
        got = [p["value"] for p in answers]
        assert np.allclose(got, predict(x, u)[:, 0], atol=1e-5), version


def test_requests_of_different_item_shapes_are_never_concatenated(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x", "axes"], ["total"], keepdims=0)], "sum",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "width"])],
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, ["batch"])],
        [helper.make_tensor("axes", TensorProto.INT64, [1], [1])])
    raw = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = mk.write_model(tmp_path, "sum", raw.SerializeToString(),
                          task="regression", value_output="total")
    runner, _ = _runner(path)

    async def scenario() -> list:
        first = asyncio.create_task(runner.run({"x": np.ones((1, 2), np.float32)}))
        await asyncio.sleep(0)
        rest = [asyncio.create_task(runner.run({"x": np.ones((2, w), np.float32)}))
                for w in (3, 5, 3)]
        return await asyncio.wait_for(asyncio.gather(first, *rest), 30)

    results = asyncio.run(scenario())
    assert [r["total"].tolist() for r in results] == [[2.0], [3.0, 3.0], [5.0, 5.0], [3.0, 3.0]]
