"""Calls within the memory budget, token rows cut by length: a request over the budget is
answered in several calls whose padded tokens stay within it, in the request's order, with
its per-item errors and dedupe, and every embedding equals the one computed alone."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from functions.codecs.plans import TextPlan
from functions.config.card import ModelCard
from functions.config.settings import Settings
from functions.model.cuts import IN_QUEUE, Budget, cut_by_length, token_lengths
from functions.model.onnx_model import OnnxModel
from functions.model.runner import ModelRunner
from tests import model_kinds as mk
from tests.built_models import BuiltModels
from tests.inprocess import start_in_process

WORDS = ["the", "service", "is", "great", "awful", "slow", "food", "place", "what", "a", "fine",
         "day", "for", "it"]


def _texts(n: int, seed: int = 7) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"{i} " + " ".join(rng.choice(WORDS, size=int(rng.integers(1, 30))))
            for i in range(n)]


def test_cuts_cover_every_row_once_within_the_budget() -> None:
    rng = np.random.default_rng(3)
    lengths = np.concatenate([rng.integers(3, 40, 500), rng.integers(200, 257, 50), [600]])
    budget = Budget(tokens=4096, input_bytes=1, max_rows=64, max_waste=0.3)
    cuts = cut_by_length(lengths, budget)
    assert sorted(np.concatenate(cuts).tolist()) == list(range(len(lengths)))
    for cut in cuts:
        longest = int(lengths[cut].max())
        assert len(cut) <= budget.max_rows
        assert len(cut) == 1 or len(cut) * longest <= budget.tokens
        assert len(cut) == 1 or lengths[cut].sum() >= (1 - budget.max_waste) * len(cut) * longest
    assert any(len(c) == 1 and lengths[c[0]] == 600 for c in cuts)  # alone, over the budget
    assert len(cuts) < len(lengths) / 4  # sorted: few calls, not one per row


def _text_runner(built: Path, tmp: Path, memory_mb: int, batching: str,
                 calls_at_once: int = 2, pair_mb: int = 128) -> tuple[ModelRunner, TextPlan]:
    card = ModelCard.from_json(built.with_suffix("").with_suffix(".card.json").read_text())
    path = tmp / "model.onnx"  # the tokenizer beside it, where the loader caches it
    shutil.copy(built, path)
    shutil.copy(built.parent / "tokenizer.json", path.with_suffix(".tokenizer.json"))
    s = Settings(batching=batching, inline_budget_ms=0, model_call_memory_mb=memory_mb,
                 calls_at_once=calls_at_once, intra_op_threads=2, pair_session_mb=pair_mb)
    model = OnnxModel(path, card, s)
    runner, plan = ModelRunner(model, s), TextPlan(model)
    runner.pads = plan.pads()
    runner.calibrate(plan.sample, plan.pads())
    return runner, plan


def test_a_request_over_the_budget_runs_in_cuts_equal_to_unbatched(
        tmp_path: Path, built_model: BuiltModels) -> None:
    path, _ = built_model("bert")
    for batching in ("off", "on"):
        # 16 MiB: 256 padded tokens a call
        runner, plan = _text_runner(path, tmp_path, 16, batching)
        shapes: list[tuple[int, ...]] = []
        run = runner.model.run

        def spy(feeds: dict[str, np.ndarray], run=run,
                shapes=shapes) -> dict[str, np.ndarray]:
            shapes.append(next(iter(feeds.values())).shape)
            return run(feeds)

        runner.model.run = spy  # type: ignore[method-assign]  # observes, computes nothing
        texts = _texts(120)
        inputs = plan.decode(texts)
        lengths = token_lengths(inputs.feeds, plan.pads())
        got = asyncio.run(runner.run(inputs.feeds, plan.finish))[runner.model.card.embedding_output]
        assert len(shapes) > 1
        assert all(rows == 1 or rows * tokens <= runner.call_budget.tokens
                   for rows, tokens in shapes), shapes
        assert sum(rows for rows, _ in shapes) == len(texts)
        assert max(t for _, t in shapes) == lengths.max() and min(t for _, t in shapes) < 16
        alone = [asyncio.run(runner.run(plan.decode([t]).feeds, plan.finish))
                 [runner.model.card.embedding_output][0] for t in texts]
        assert np.abs(got - np.array(alone)).max() < 1e-6, batching


def test_served_cuts_keep_order_errors_and_dedupe(tmp_path: Path,
                                                  built_model: BuiltModels) -> None:
    path, bert = built_model("bert")
    fn = start_in_process({"MODEL_URI": str(path), "MODEL_CALL_MEMORY_MB": "16",
                           "BATCHING": "on", "INLINE_BUDGET_MS": "0"}, tmp_path)
    try:
        texts = _texts(200, seed=11)
        body = [*texts, texts[5], 42, {"text": texts[7]}]
        want = mk.reference_embeddings(bert, path.parent / "tokenizer.json", texts, 16)
        tok = Tokenizer.from_file(str(path.parent / "tokenizer.json"))
        tok.enable_truncation(16)
        distinct = len({tuple(e.ids) for e in tok.encode_batch(texts)})  # after truncation
        answers = fn.concurrently("POST", "/batch-predict",
                                  [{"json": {"instances": body}}] * 4)
        for resp in answers:
            got = resp.json()
            assert got["errors"] == 1 and got["unique_rows"] == distinct > 150
            preds = got["predictions"]
            emb = np.array([p["embedding"] for p in preds[:len(texts)]])
            assert np.abs(emb - want).max() < 1e-4
            assert preds[len(texts)]["embedding"] == preds[5]["embedding"]
            assert preds[len(texts) + 1]["error"]["index"] == len(texts) + 1
            assert preds[len(texts) + 2]["embedding"] == preds[7]["embedding"]
        assert fn.get("/model").json()["batching"]["calls"] > 4  # cut, not one call each
    finally:
        fn.stop()


def test_calls_are_cut_where_padding_costs_more_than_a_call() -> None:
    lengths = np.array([40, 10, 12, 10, 41, 10])
    loose = Budget(tokens=4096, input_bytes=1, max_rows=64, max_waste=0.3)
    assert [lengths[c].tolist() for c in cut_by_length(lengths, loose)] == [
        [10, 10, 10, 12], [40, 41]]
    # a call costs 5 padded tokens: padding three rows by 2 (6) costs more, one row by 1 not
    measured = Budget(tokens=4096, input_bytes=1, max_rows=64, max_waste=0.3, call_tokens=5)
    assert [lengths[c].tolist() for c in cut_by_length(lengths, measured)] == [
        [10, 10, 10], [12], [40, 41]]


def test_a_slow_text_model_merges_and_its_cuts_fail_together(
        tmp_path: Path, built_model: BuiltModels) -> None:
    path, _ = built_model("bert")
    runner, plan = _text_runner(path, tmp_path, 16, "auto")  # every call leaves the loop
    assert runner.batcher is not None and runner.reason.endswith("token inputs")
    assert runner.call_budget.call_tokens is not None  # from the measured curve
    feeds = plan.decode(_texts(120)).feeds
    ids = next(n for n in plan.pads() if "input_ids" in n)
    feeds[ids][77, 1] = 10**6  # a token id past the vocabulary: its cut's call fails

    async def run() -> set[asyncio.Task]:
        try:
            await runner.run(feeds, plan.finish)
        except Exception as exc:  # the model's own error, not a group of them
            assert type(exc).__module__.startswith("onnxruntime") and "1000000" in str(exc), exc
        else:
            raise AssertionError("a failing cut must fail the request")
        await asyncio.sleep(0.05)  # let cancelled siblings unwind
        return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}

    assert asyncio.run(run()) == set()  # no cut left running


def test_the_tokenizer_leaves_the_cores_to_the_model_unless_told(
        tmp_path: Path, built_model: BuiltModels, monkeypatch) -> None:
    path, _ = built_model("bert")
    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    _, plan = _text_runner(path, tmp_path, 16, "off")
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false"
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")
    (tmp_path / "again").mkdir()
    _text_runner(path, tmp_path / "again", 16, "off")
    assert os.environ["TOKENIZERS_PARALLELISM"] == "true"  # a user's choice is kept
    assert plan.decode(_texts(3)).feeds  # and it still tokenizes


@pytest.mark.parametrize(("at_once", "pair_mb"), [(1, 128), (2, 0), (2, 128)])
def test_a_merge_cut_by_length_runs_its_calls_back_to_back_in_the_model_threads(
        tmp_path: Path, built_model: BuiltModels, at_once: int, pair_mb: int) -> None:
    """Off the loop, one cut after another, or two at a time (CALLS_AT_ONCE=2) whose padded
    tokens together stay within one call's budget: on a pair session whose calls use one
    intra-op thread each (a model file within PAIR_SESSION_MB), else on the model's own; with
    two at a time, the next merge starts as soon as one lane is free, formed by that lane."""
    path, _ = built_model("bert")
    runner, plan = _text_runner(path, tmp_path, 16, "on", at_once, pair_mb)  # 256 padded
    # tokens a call
    paired = at_once == 2 and pair_mb > 0
    assert runner.describe()["pair_session"] is paired
    assert (runner.model.pair_session is not None) is paired
    if paired:
        assert runner.model.pair_session.get_session_options().intra_op_num_threads == 1
        assert runner.model.session.get_session_options().intra_op_num_threads == 2
    calls: list[tuple[str, int]] = []
    held, most, lock = [0], [0], threading.Lock()
    batcher = runner.batcher
    assert batcher is not None and batcher.call_cuts is not None
    merges_cut: list[int] = []
    call_cuts = batcher.call_cuts
    merges_at_once = [0, 0]  # now, most

    def started(cuts) -> None:
        with lock:
            merges_cut.append(len(cuts))
            merges_at_once[0] += 1
            merges_at_once[1] = max(merges_at_once)

    def ended(*_) -> None:
        with lock:
            merges_at_once[0] -= 1

    async def counted(feeds, cuts, lengths):  # observes, computes nothing itself
        started(cuts)
        try:
            return await call_cuts(feeds, cuts, lengths)
        finally:
            ended()

    lanes, formed_in = runner.lanes, set()
    current, left = threading.local(), {}  # the merge of the cut a lane runs; cuts to run
    if lanes is not None:  # where every merge goes, whether the loop or a lane formed it
        submit = lanes.submit

        def submitted(joined, cuts, *args):  # observes, computes nothing itself
            formed_in.add(threading.current_thread().name)
            with lock:
                left[id(joined)] = len(cuts)
            started(cuts)
            part = joined.part

            def tagged(index):  # a lane takes its cut's feeds right before running it
                current.merge = id(joined)
                return part(index)

            joined.part = tagged
            return submit(joined, cuts, *args)

        lanes.submit = submitted  # type: ignore[method-assign]

    def cut_done() -> None:  # a merge has ended when its last cut has run (its future is
        merge, current.merge = getattr(current, "merge", None), None  # set a moment later,
        if merge is not None:  # after the lane has let go of its cut: counting until then
            with lock:  # would see a third merge begin in the other lane meanwhile)
                left[merge] -= 1
                last = left[merge] == 0
            if last:
                ended()

    def spy(run, session: str):  # observes, computes nothing itself
        def observed(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            ids = feeds["input_ids"]
            calls.append((threading.current_thread().name, len(ids), session))
            with lock:
                held[0] += ids.size
                most[0] = max(most[0], held[0])
            try:
                time.sleep(0.002)  # long enough for the other thread's cut to overlap
                return run(feeds)
            finally:
                with lock:
                    held[0] -= ids.size
                cut_done()
        return observed

    if lanes is None:
        batcher.call_cuts = counted
    runner.model.run = spy(runner.model.run, "model")  # type: ignore[method-assign]
    if paired:
        runner._pair = spy(runner._pair, "pair")
    texts = _texts(60, seed=5)

    async def concurrent() -> list[dict[str, np.ndarray]]:
        return await asyncio.gather(*(runner.run(plan.decode([t]).feeds, plan.finish)
                                      for t in texts))

    name = runner.model.card.embedding_output
    got = np.array([out[name][0] for out in asyncio.run(concurrent())])
    assert merges_cut and max(merges_cut) > 1  # merges were cut into several calls
    assert sum(rows for _, rows, _ in calls) == len(texts)
    threads = {thread for thread, _, _ in calls}
    assert threads == ({"model_0"} if at_once == 1 else {"model_0", "model-beside_0"})
    beside = {session for thread, _, session in calls if thread == "model-beside_0"}
    assert beside == (set() if at_once == 1 else {"pair" if paired else "model"})
    assert most[0] <= runner.call_budget.tokens == 256
    # two lanes: a lane with no cut of its merge left starts the next merge's, the merge
    # before still running in the other (one at a time: merges one after another)
    assert merges_at_once[1] == (1 if at_once == 1 else 2)
    # and a lane with no cut left formed the next merge itself, in its thread, from what
    # had queued, without waiting for the event loop (the drainer formed the first)
    lane_threads = {"model_0", "model-beside_0"}
    assert at_once == 1 or "MainThread" in formed_in and formed_in - {"MainThread"} and \
        formed_in <= {"MainThread"} | lane_threads, formed_in
    alone = np.array([asyncio.run(runner.run(plan.decode([t]).feeds, plan.finish))[name][0]
                      for t in texts])
    assert np.abs(got - alone).max() < 1e-6


def test_a_large_requests_cuts_queue_a_window_at_a_time(
        tmp_path: Path, built_model: BuiltModels) -> None:
    path, _ = built_model("bert")
    runner, plan = _text_runner(path, tmp_path, 1, "on")  # 16 padded tokens a call
    feeds = plan.decode(_texts(200)).feeds
    assert len(cut_by_length(token_lengths(feeds, plan.pads()), runner.call_budget)) > IN_QUEUE
    waiting, most, submit = [0], [0], runner._submit

    async def observed(part: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        waiting[0] += 1
        most[0] = max(most[0], waiting[0])
        try:
            return await submit(part)
        finally:
            waiting[0] -= 1

    runner._submit = observed  # type: ignore[method-assign]  # counts, computes nothing
    out = asyncio.run(runner.run(feeds, plan.finish))[runner.model.card.embedding_output]
    assert most[0] == IN_QUEUE and len(out) == 200  # together, but never all at once


def _qa_shaped_model(folder: Path) -> Path:
    """A text-shaped graph with a 2-D output on the token axis (``start``: each token's
    id, as a question-answering model's per-token logits), a 3-D one (``hidden``: each id
    three times, as a hidden state of 3 units) and one of fixed width (``classes``: the
    row's token count times 1, 2 and 3)."""
    from onnx import TensorProto, helper

    tok = ["batch", "tokens"]
    graph = helper.make_graph(
        [helper.make_node("Cast", ["input_ids"], ["start"], to=TensorProto.FLOAT),
         helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),
         helper.make_node("ReduceSum", ["mask", "axis"], ["count"], keepdims=1),
         helper.make_node("Mul", ["count", "steps"], ["classes"]),
         helper.make_node("Unsqueeze", ["start", "last"], ["column"]),
         helper.make_node("Mul", ["column", "units"], ["hidden"])],
        "qa", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, tok),
               helper.make_tensor_value_info("attention_mask", TensorProto.INT64, tok)],
        [helper.make_tensor_value_info("start", TensorProto.FLOAT, tok),
         helper.make_tensor_value_info("classes", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("hidden", TensorProto.FLOAT, [*tok, 3])],
        [helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
         helper.make_tensor("steps", TensorProto.FLOAT, [1, 3], [1, 2, 3]),
         helper.make_tensor("units", TensorProto.FLOAT, [1, 1, 3], [1, 1, 1]),
         helper.make_tensor("last", TensorProto.INT64, [1], [2])])
    onnx_bytes = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                   ir_version=8).SerializeToString()
    return mk.write_model(folder, "qa", onnx_bytes, task="regression", value_output="classes")


def _token_feeds(lengths: list[int], width: int | None = None) -> dict[str, np.ndarray]:
    """Rows of ids 1..length (0-padded to ``width``, or the longest)."""
    width = width or max(lengths)
    ids = np.zeros((len(lengths), width), dtype=np.int64)
    for row, n in enumerate(lengths):
        ids[row, :n] = np.arange(1, n + 1)
    return {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64)}


def _expect(out: dict[str, np.ndarray], lengths: list[int], width: int) -> None:
    for row, n in enumerate(lengths):
        assert out["start"].shape[1] == width
        assert out["start"][row, :n].tolist() == list(range(1, n + 1))
        assert not out["start"][row, n:].any()
        assert out["classes"][row].tolist() == [n, 2 * n, 3 * n]
        hidden = out["hidden"][row]
        if hidden.ndim == 1:  # pooled: the sum of the row's ids, per unit
            assert hidden.tolist() == [n * (n + 1) / 2] * 3
        else:
            assert hidden.shape == (width, 3) and not hidden[n:].any()
            assert hidden[:n].tolist() == [[i, i, i] for i in range(1, n + 1)]


def _pool(outputs: dict[str, np.ndarray], feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What a text plan's ``finish`` does: the hidden state summed over tokens, an axis fewer."""
    return {**outputs, "hidden": outputs["hidden"].sum(axis=1)}


def test_which_outputs_carry_the_token_axis_is_read_from_the_graph(tmp_path: Path) -> None:
    """A 2-D token output is padded across cuts and cut back per merged request; an output
    whose width happens to equal the merge's (or a cut's) token length is left whole, a
    pooled one included."""
    path = _qa_shaped_model(tmp_path)
    card = ModelCard.from_json(path.with_suffix(".card.json").read_text())
    pads = {"input_ids": 0, "attention_mask": 0}
    for batching in ("off", "on"):
        s = Settings(batching=batching, inline_budget_ms=0, model_call_memory_mb=16)
        model = OnnxModel(path, card, s)
        assert model.token_outputs == {"start": 2, "hidden": 3}
        runner = ModelRunner(model, s)
        runner.pads = pads
        runner.calibrate(lambda n: _token_feeds([3] * n), pads)
        assert (runner.batcher is not None) == (batching == "on")
        lengths = [3, 40, 2, 3, 41, 2]  # cut by length: the short rows apart from the long

        async def alone_then_merged(runner: ModelRunner = runner,
                                    ) -> list[dict[str, np.ndarray]]:
            first = asyncio.ensure_future(runner.run(_token_feeds([1])))
            await asyncio.sleep(0)  # in flight: the next two queue and merge
            return await asyncio.gather(first, runner.run(_token_feeds([3])),
                                        runner.run(_token_feeds([2])))

        calls = runner.calls
        whole = asyncio.run(runner.run(_token_feeds(lengths)))
        assert runner.calls - calls >= 2  # cut by length
        _expect(whole, lengths, 41)
        pooled = asyncio.run(runner.run(_token_feeds(lengths), _pool))  # 3 units: the
        _expect(pooled, lengths, 41)  # short cut's length
        _, three, two = asyncio.run(alone_then_merged())
        _expect(three, [3], 3)
        _expect(two, [2], 2)  # classes (width 3) whole beside a merge 3 tokens long
