"""The two lanes a text model's merged cuts run in (functions/model/lanes.py), on the test
BERT's pair session: a lane with no cut of its merge left takes the next merge's while the
other finishes; the padded tokens of the two calls in flight stay within one call's budget;
a failed cut fails its own merge only; a call queued on the model's thread waits one cut at
most; every answer equals the model's own for the same rows."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import permutations
from pathlib import Path

import numpy as np
import pytest

from functions.codecs.plans import TextPlan
from functions.model.cuts import Budget, Joined, cut_by_length, token_lengths
from functions.model.lanes import Lanes
from functions.model.runner import ModelRunner
from tests.built_models import BuiltModels
from tests.test_length_cuts import WORDS, _text_runner, _texts

TOKENS = 256


class Recorded:
    """The model's pair-session run, each call recorded (thread, rows, padded tokens, start,
    end) and stretched to ``seconds`` so the lanes' schedule is what the test sees."""

    def __init__(self, runner: ModelRunner, seconds: float = 0.02) -> None:
        self.run, self.seconds = runner.model.pair_run(1), seconds
        self.calls: list[tuple[str, int, int, float, float]] = []
        self.held, self.most, self.lock = 0, 0, threading.Lock()
        self.refused: set[int] = set()
        """Token ids the stretched model refuses (a cut holding one fails)."""

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids = feeds["input_ids"]
        with self.lock:
            self.held += ids.size
            self.most = max(self.most, self.held)
        started = time.perf_counter()
        try:
            if self.refused & set(np.unique(ids).tolist()):
                raise ValueError("refused by the model")
            out = self.run(feeds)
            time.sleep(self.seconds)
            return out
        finally:
            with self.lock:
                self.held -= ids.size
            self.calls.append((threading.current_thread().name, len(ids), ids.size, started,
                               time.perf_counter()))


@pytest.fixture
def text(tmp_path: Path, built_model: BuiltModels) -> tuple[ModelRunner, TextPlan]:
    path, _ = built_model("bert")
    return _text_runner(path, tmp_path, 16, "on")  # 256 padded tokens a call


def _submit(lanes: Lanes, runner: ModelRunner, plan: TextPlan, texts: list[str], run: Recorded,
            budget_tokens: int | None = TOKENS, wide: Recorded | None = None):
    """``texts`` as one merge, cut by length within ``budget_tokens`` padded tokens a call
    (None: one cut), handed to ``lanes``: (feeds, cuts, future of the outputs)."""
    feeds = plan.decode(texts).feeds
    lengths = token_lengths(feeds, plan.pads())
    cuts = [np.arange(len(texts))] if budget_tokens is None else \
        cut_by_length(lengths, Budget(budget_tokens, 1, 64))
    joined = Joined(feeds, plan.pads(), lengths, runner.model.token_outputs)
    return feeds, cuts, lanes.submit(joined, cuts, lengths, run, wide)


def _expected(runner: ModelRunner, plan: TextPlan, texts: list[str]) -> np.ndarray:
    name = runner.model.card.embedding_output
    return np.array([plan.finish(runner.model.run(f), f)[name][0]
                     for f in (plan.decode([t]).feeds for t in texts)])


def _lanes(model_thread: ThreadPoolExecutor, tokens: int = TOKENS) -> Lanes:
    return Lanes(model_thread.submit, tokens)


def _pooled(runner: ModelRunner, plan: TextPlan, out, feeds) -> np.ndarray:
    return plan.finish(out, feeds)[runner.model.card.embedding_output]


def test_a_free_lane_takes_the_next_merges_cuts_while_the_other_finishes(
        text: tuple[ModelRunner, TextPlan]) -> None:
    runner, plan = text
    first = _texts(12, seed=1)
    second = _texts(3, seed=2)
    run = Recorded(runner)
    with ThreadPoolExecutor(1, thread_name_prefix="model") as model_thread:
        lanes = _lanes(model_thread)
        asked = threading.Event()
        lanes.on_idle = asked.set
        feeds, cuts, a = _submit(lanes, runner, plan, first, run, TOKENS // 2)
        assert len(cuts) >= 2
        assert asked.wait(30)  # a lane has no cut of the first merge left
        started_b = time.perf_counter()
        b_feeds, _, b = _submit(lanes, runner, plan, second, run)
        got_a, got_b = a.result(30), b.result(30)
    ends_of_a = [end for *_, start, end in run.calls if start < started_b]
    firsts_of_b = [start for _, _, _, start, _ in run.calls if start >= started_b]
    assert firsts_of_b and max(ends_of_a) > min(firsts_of_b)  # the two merges overlapped
    assert {thread for thread, *_ in run.calls} == {"model_0", "model-beside_0"}
    for got, fed, texts in ((got_a, feeds, first), (got_b, b_feeds, second)):
        assert np.abs(_pooled(runner, plan, got, fed) - _expected(runner, plan, texts)).max() < 1e-5


def test_the_two_calls_in_flight_stay_within_one_calls_budget(
        text: tuple[ModelRunner, TextPlan]) -> None:
    runner, plan = text
    run = Recorded(runner, seconds=0.005)
    merges = [_texts(20, seed=s) for s in range(4)]
    with ThreadPoolExecutor(1, thread_name_prefix="model") as model_thread:
        lanes = _lanes(model_thread)
        futures = []
        for texts in merges:
            feeds, _, future = _submit(lanes, runner, plan, texts, run)
            futures.append((texts, feeds, future))
        for texts, feeds, future in futures:
            got = _pooled(runner, plan, future.result(60), feeds)
            assert np.abs(got - _expected(runner, plan, texts)).max() < 1e-5
    assert sum(rows for _, rows, *_ in run.calls) == sum(len(t) for t in merges)
    assert run.most <= TOKENS
    assert len({thread for thread, *_ in run.calls}) == 2


def test_a_failed_cut_fails_its_own_merge_and_drops_its_cuts_not_started(
        text: tuple[ModelRunner, TextPlan]) -> None:
    runner, plan = text
    bad_run, good_run = Recorded(runner), Recorded(runner)
    bad_texts = [" ".join(pair) for pair in permutations(WORDS, 2)][:30]  # 4 tokens each
    refused = "never again " * 7  # the vocabulary's, in no other sentence; 16 tokens
    bad_run.refused = set(plan.decode([refused]).feeds["input_ids"].ravel().tolist()) - set(
        plan.decode(bad_texts).feeds["input_ids"].ravel().tolist())
    assert bad_run.refused
    bad_texts[11] = refused
    with ThreadPoolExecutor(1, thread_name_prefix="model") as model_thread:
        lanes = _lanes(model_thread)
        # 15 tokens a call: cuts of 3 short rows, the refused row alone and largest (first)
        _, cuts, bad = _submit(lanes, runner, plan, bad_texts, bad_run, 15)
        assert len(cuts) >= 10
        good_texts = _texts(5, seed=4)
        g_feeds, g_cuts, good = _submit(lanes, runner, plan, good_texts, good_run)
        with pytest.raises(ValueError, match="refused by the model"):
            bad.result(60)
        got = _pooled(runner, plan, good.result(60), g_feeds)
    assert np.abs(got - _expected(runner, plan, good_texts)).max() < 1e-5
    assert len(good_run.calls) == len(g_cuts)
    assert len(bad_run.calls) <= 3 < len(cuts)  # the refused cut, and what the other lane
    # had started: the failed merge's other cuts were dropped


def test_a_call_queued_on_the_model_thread_waits_one_cut_at_most(
        text: tuple[ModelRunner, TextPlan]) -> None:
    runner, plan = text
    run = Recorded(runner, seconds=0.03)
    with ThreadPoolExecutor(1, thread_name_prefix="model") as model_thread:
        lanes = _lanes(model_thread)
        _, cuts, merge = _submit(lanes, runner, plan, _texts(40, seed=5), run, 48)
        assert len(cuts) >= 8
        time.sleep(0.05)
        alone = model_thread.submit(time.perf_counter)  # e.g. a request run on its own
        ran_at = alone.result(30)
        merge.result(60)
    on_model_thread = sorted(start for thread, _, _, start, _ in run.calls
                             if thread == "model_0")
    assert sum(1 for start in on_model_thread if start > ran_at) >= 2  # lanes went on after


def test_a_merge_given_up_by_its_caller_leaves_the_lanes_working(
        text: tuple[ModelRunner, TextPlan]) -> None:
    """Its awaiting task cancelled (a client gone, a loop closing), a merge's future is
    cancelled while its cuts run: the lanes finish them and both go on with the next."""
    runner, plan = text
    run = Recorded(runner)
    with ThreadPoolExecutor(1, thread_name_prefix="model") as model_thread:
        lanes = _lanes(model_thread)
        _, cuts, dropped = _submit(lanes, runner, plan, _texts(20, seed=6), run, 64)
        assert dropped.cancel()
        while len(run.calls) < len(cuts):  # its cuts are done, its answer refused
            time.sleep(0.01)
        time.sleep(0.05)
        since = time.perf_counter()
        texts = _texts(20, seed=7)
        feeds, next_cuts, kept = _submit(lanes, runner, plan, texts, run, 64)
        assert len(next_cuts) >= 4
        got = _pooled(runner, plan, kept.result(60), feeds)
    assert np.abs(got - _expected(runner, plan, texts)).max() < 1e-5
    assert {thread for thread, _, _, start, _ in run.calls if start >= since} == \
        {"model_0", "model-beside_0"}


def test_one_cut_finding_both_lanes_idle_runs_on_both_cpus_alone(
        text: tuple[ModelRunner, TextPlan]) -> None:
    """A merge of one cut, both lanes idle: one call of the model's own (2-thread) session,
    in the first lane, the second held: a merge handed over meanwhile starts after it."""
    runner, plan = text
    pair, wide = Recorded(runner), Recorded(runner, seconds=0.05)
    wide.run = runner.model.run
    with ThreadPoolExecutor(1, thread_name_prefix="model") as model_thread:
        lanes = _lanes(model_thread)
        first = _texts(3, seed=9)
        feeds, _, alone = _submit(lanes, runner, plan, first, pair, None, wide)
        time.sleep(0.01)
        assert lanes.busy()
        later = _texts(12, seed=10)
        l_feeds, l_cuts, after = _submit(lanes, runner, plan, later, pair, 64)
        assert len(l_cuts) >= 2
        got = _pooled(runner, plan, alone.result(30), feeds)
        got_later = _pooled(runner, plan, after.result(30), l_feeds)
    assert [(thread, rows) for thread, rows, *_ in wide.calls] == [("model_0", len(first))]
    wide_end = wide.calls[0][4]
    assert min(start for *_, start, _ in pair.calls) >= wide_end  # held until it ended
    assert {thread for thread, *_ in pair.calls} == {"model_0", "model-beside_0"}
    assert np.abs(got - _expected(runner, plan, first)).max() < 1e-5
    assert np.abs(got_later - _expected(runner, plan, later)).max() < 1e-5


def test_a_merging_text_model_keeps_its_calls_off_the_event_loop(
        text: tuple[ModelRunner, TextPlan]) -> None:
    """However fast its calls turn out (short texts on a fast machine), a text model that
    merges never calls on the loop: there a call would hold every request up while it ran,
    and no merge would form (seen: 16 clients at ~350 requests/s instead of ~2,000)."""
    runner, _ = text
    assert runner.batcher is not None and runner.curve is not None
    runner.curve.scale = 1e-3  # its calls seen a thousand times faster than measured
    runner._follow_curve()
    assert runner.inline_rows == 0 and not runner.runs_inline(1)
