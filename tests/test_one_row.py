"""One clean row takes functions.one_row; every answer it gives is the batch path's answer.

The property tests feed arbitrary rows (NaN, infinities, huge integers, booleans, strings,
wrong widths) to real models and compare byte for byte with ``PredictionService.predict``;
the served tests check the production server's answers and counters end to end.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.card import ModelCard
from functions.errors import ServingError
from functions.model.onnx_model import OnnxModel
from functions.predictions import row_shaper, rows_of_columns, shape_columns
from functions.runtime import Runtime
from functions.settings import Settings
from tests import model_kinds as mk
from tests.servers import Served, ready_runtime

SETOSA = [5.1, 3.5, 1.4, 0.2]


def _ridge(folder: Path) -> Path:
    from skl2onnx import to_onnx
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True)
    onx = to_onnx(Ridge().fit(X.astype(np.float32), y), X[:1].astype(np.float32),
                  target_opset=17)
    return mk.write_model(folder, "ridge", onx.SerializeToString(), task="regression",
                          value_output="variable", feature_names=[f"f{i}" for i in range(10)])


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Runtime]:
    """Served in process: the demo classifier (labels on its card), a regressor, and a
    LightGBM classifier with ZipMap and no labels (the general shaping inside one_row)."""
    root = tmp_path_factory.mktemp("one_row")
    uris = {"iris": None, "ridge": str(_ridge(root / "ridge")),
            "gbdt": str(mk.gbdt_zipmap_model(root / "gbdt")[0])}
    out = {}
    for name, uri in uris.items():
        extra = {"model_uri": uri} if uri else {}
        rt = out[name] = ready_runtime(Settings(model_cache_dir=root / f"cache-{name}", **extra))
        width = rt.service.plan(rt.holder.model).schema.width  # type: ignore[arg-type, union-attr]
        asyncio.run(rt.service.predict([[0.5] * width], strict=True))  # builds the one-row path
    return out


def _both(rt: Runtime, row: Any) -> tuple[bytes | None, bytes | None]:
    """(one_row's answer, the batch path's answer), each as JSON bytes or None."""
    one = rt.service.predict_one([row])
    try:
        full = asyncio.run(rt.service.predict([row], strict=True))
    except ServingError:
        full_bytes = None
    else:
        full_bytes = orjson.dumps({"p": full.items, "v": full.model_version})
    one_bytes = None if one is None else orjson.dumps({"p": [one[0]], "v": one[1]})
    return one_bytes, full_bytes


CELL = st.one_of(st.floats(width=32), st.floats(), st.integers(), st.integers(-10, 10),
                 st.booleans(), st.none(), st.text(max_size=3))


@pytest.mark.parametrize("name", ["iris", "ridge", "gbdt"])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_one_row_answers_exactly_as_the_batch_path(runtimes, name: str, data) -> None:
    rt = runtimes[name]
    width = rt.service.plan(rt.holder.model).schema.width  # type: ignore[arg-type, union-attr]
    row = data.draw(st.one_of(st.lists(CELL, min_size=width, max_size=width),
                              st.lists(st.floats(-1e3, 1e3, width=32), min_size=width,
                                       max_size=width),
                              st.lists(CELL, max_size=width + 1)))
    one, full = _both(rt, row)
    if one is not None:
        assert one == full  # same bytes: same labels, same float32 digits, same version
    if full is not None and all(type(v) in (int, float) and abs(v) < 1e30 for v in row):
        assert one is not None  # a clean row of finite numbers takes the one-row path


def test_one_row_declines_when_merging(tmp_path: Path) -> None:
    """BATCHING=on: every call goes through the batcher, never around it."""
    rt = ready_runtime(Settings(model_cache_dir=tmp_path, batching="on"))
    svc = rt.service
    runner = svc.runners(rt.holder.model)  # type: ignore[arg-type]
    deadline = time.monotonic() + 30
    while runner.batcher is None and time.monotonic() < deadline:  # set by the calibration
        time.sleep(0.02)
    assert runner.batcher is not None
    want = asyncio.run(svc.predict([SETOSA], strict=True))  # through the batcher
    assert svc.predict_one([SETOSA]) is None
    assert want.items[0]["label"] == "setosa"


def test_one_row_declines_after_a_model_swap(runtimes) -> None:
    rt = runtimes["iris"]
    svc, model = rt.service, rt.holder.model
    assert svc.predict_one([SETOSA]) is not None
    assert svc.predict_one([SETOSA, SETOSA]) is None and svc.predict_one(SETOSA) is None
    card = msgspec.structs.replace(model.card, version="2")  # type: ignore[union-attr]
    rt.holder.swap(OnnxModel(model.path, card, rt.settings))  # type: ignore[union-attr]
    try:  # a roll-out: the path built for the old version is not used for the new one
        assert svc.predict_one([SETOSA]) is None
        assert asyncio.run(svc.predict([SETOSA], strict=True)).model_version == "2"
        assert svc.predict_one([SETOSA])[1] == "2"  # type: ignore[index]
    finally:
        rt.holder.swap(model)  # type: ignore[arg-type]
        asyncio.run(svc.predict([SETOSA], strict=True))


@settings(max_examples=300, deadline=None)
@given(label=st.integers(0, 2),
       probs=st.lists(st.floats(width=32, allow_nan=True), min_size=3, max_size=3))
def test_the_row_shaper_is_the_column_rule_for_one_row(label: int, probs: list[float]) -> None:
    """Or declines (then one_row uses the column rule itself): only for NaN or infinite
    probabilities, which the column rule writes with float_values' wide path."""
    card = ModelCard(name="c", version="1", task="classification", labels=["a", "b", "c"],
                     label_output="label", probability_output="p")
    outputs = {"label": np.array([label], dtype=np.int64),
               "p": np.array([probs], dtype=np.float32)}
    want = rows_of_columns(shape_columns(card, outputs, 1), 1)[0]
    got = row_shaper(card)(outputs)  # type: ignore[misc]
    if got is None:
        assert not np.isfinite(outputs["p"]).all()
    else:
        assert orjson.dumps(got) == orjson.dumps(want)


def _counter(fn: Served, name: str) -> float:
    for line in fn.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_served_single_rows_answer_and_count_as_batches_do(demo_function: Served) -> None:
    """Over HTTP (production server): a single row answers what the batch route answers for
    it (a batch of one: onnxruntime's kernels may round differently at other sizes), and
    is counted once in every counter; a bad single row is the same 422."""
    names = ["predict_rows_total", "predict_model_rows_total", "model_calls_total",
             'http_requests_total{path="/",status="200"}']
    before = {n: _counter(demo_function, n) for n in names}
    row = [6.3, 2.9, 5.6, 1.8]
    single = demo_function.post("/", json={"instances": [row]})
    after = {n: _counter(demo_function, n) for n in names}
    assert single.status_code == 200
    assert {n: after[n] - before[n] for n in names} == dict.fromkeys(names, 1.0)
    batch = demo_function.post("/batch-predict", json={"instances": [row]}).json()
    assert single.json() == {"predictions": [batch["predictions"][0]], "model_version": "1"}
    bad = demo_function.post("/predict", json={"instances": [[5.1, 3.5, True, 0.2]]})
    assert bad.status_code == 422
    assert bad.json()["error"]["message"].startswith("instances[0].petal_length:")
