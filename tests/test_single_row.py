"""One row is the pipeline's early exit, not a second answerer: its answer is the one the
same row gets inside a batch, byte for byte, through the real service and codecs.

The property tests feed arbitrary rows (NaN, infinities, huge integers, booleans, strings,
wrong widths) to real models; merging and roll-outs are checked on a real runtime.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.codecs import vertex
from functions.codecs.predict_bodies import batch_body, predict_body
from functions.config.settings import Settings
from functions.errors import ServingError
from functions.model.onnx_model import OnnxModel
from functions.runtime import Runtime
from tests import model_kinds as mk
from tests.built_models import BuiltModels
from tests.servers import ready_runtime

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
def runtimes(tmp_path_factory: pytest.TempPathFactory,
             built_model: BuiltModels) -> dict[str, Runtime]:
    """Served in process: the demo classifier (labels on its card), a regressor, and a
    LightGBM classifier with ZipMap and no labels."""
    root = tmp_path_factory.mktemp("single_row")
    uris = {"iris": None, "ridge": str(_ridge(root / "ridge")),
            "gbdt": str(built_model("gbdt")[0])}
    return {name: ready_runtime(Settings(model_cache_dir=root / f"cache-{name}",
                                         **({"model_uri": uri} if uri else {})))
            for name, uri in uris.items()}


async def _answer(rt: Runtime, instances: list[Any], strict: bool) -> dict[str, Any] | None:
    svc = rt.service
    model = await svc.model()
    body = json.dumps({"instances": instances}).encode()  # big ints and NaN, as clients send
    try:
        scored = await svc.predict(model, vertex.decode(body, svc.plan(model), 1000),
                                   strict=strict)
    except ServingError:
        return None
    return (predict_body if strict else batch_body)(scored)


CELL = st.one_of(st.floats(width=32), st.floats(), st.integers(), st.integers(-10, 10),
                 st.booleans(), st.none(), st.text(max_size=3))


@pytest.mark.parametrize("name", ["iris", "ridge", "gbdt"])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_one_row_answers_as_it_does_inside_a_batch(runtimes, name: str, data) -> None:
    rt = runtimes[name]
    width = rt.service.plan(rt.holder.model).schema.width  # type: ignore[arg-type, union-attr]
    row = data.draw(st.one_of(st.lists(CELL, min_size=width, max_size=width),
                              st.lists(st.floats(-1e3, 1e3, width=32), min_size=width,
                                       max_size=width),
                              st.lists(CELL, max_size=width + 1)))
    alone = asyncio.run(_answer(rt, [row], strict=True))
    twice = asyncio.run(_answer(rt, [row, row], strict=False))  # dedupe: one row, two answers
    assert twice is not None
    first = twice["predictions"][0]
    if alone is None:  # refused alone: refused in the batch too, with its index
        assert "error" in first and first["error"]["index"] == 0
    else:
        assert orjson.dumps(alone["predictions"][0]) == orjson.dumps(first)
        assert twice["unique_rows"] == 1 and twice["predictions"][1] == first


def test_one_row_goes_through_the_batcher_when_merging(tmp_path: Path) -> None:
    """BATCHING=on: every call goes through the batcher, one row included."""
    rt = ready_runtime(Settings(model_cache_dir=tmp_path, batching="on"))
    runner = rt.service.runners(rt.holder.model)  # type: ignore[arg-type]
    deadline = time.monotonic() + 30
    while runner.batcher is None and time.monotonic() < deadline:  # set by the calibration
        time.sleep(0.02)
    assert runner.batcher is not None
    assert runner.run_now({"input": np.array([SETOSA], dtype=np.float32)}, 1) is None
    want = asyncio.run(_answer(rt, [SETOSA], strict=True))
    assert want is not None and want["predictions"][0]["label"] == "setosa"


def test_one_row_follows_a_model_swap(runtimes) -> None:
    rt = runtimes["iris"]
    model = rt.holder.model
    card = msgspec.structs.replace(model.card, version="2")  # type: ignore[union-attr]
    rt.holder.swap(OnnxModel(model.path, card, rt.settings))  # type: ignore[union-attr]
    try:  # a roll-out: the next single row is scored and labelled by the new version
        got = asyncio.run(_answer(rt, [SETOSA], strict=True))
        assert got is not None and got["model_version"] == "2"
    finally:
        rt.holder.swap(model)  # type: ignore[arg-type]
    got = asyncio.run(_answer(rt, [SETOSA], strict=True))
    assert got is not None and got["model_version"] == "1"
