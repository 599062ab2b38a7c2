"""The golden corpus: what the function answers, byte for byte, for every route x model kind
x error case, plus the outcome of a scored Pub/Sub message.

``collect(root)`` builds each model kind once (tests/model_kinds.py; ``collect(root,
built)`` takes them from ``built(kind)``, the suite's built_model fixture), wires a real runtime
for it (``functions.runtime.build``) and drives its Router in process; the result maps a
case name to ``[status, content type, body]``. ``python -m tests.golden.corpus`` writes it
to tests/golden/corpus.json; tests/test_golden.py compares a fresh run with that file.
Answers that are not deterministic (metrics, timings, the cost curve) are left out.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus.json"
ROOT = HERE.parent.parent
Case = tuple[str, str, str, Any, dict[str, str]]  # name, method, path, body, headers


async def call(router: Any, method: str, path: str, body: bytes = b"",
               headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """One request through ``router`` in process: (status, content type, body)."""
    from starlette.requests import Request

    path, _, query = path.partition("?")
    hdrs = {"content-type": "application/json", **(headers or {})}
    if body:
        hdrs["content-length"] = str(len(body))
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": query.encode(), "headers": [(k.lower().encode(), v.encode())
                                                         for k, v in hdrs.items()],
             "http_version": "1.1", "scheme": "http", "server": ("testserver", 80),
             "client": ("127.0.0.1", 1), "root_path": "", "asgi": {"version": "3.0"}}
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    response = await router(Request(scope, receive))
    return response.status_code, response.headers.get("content-type", ""), bytes(response.body)


def _encode(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    return json.dumps(body).encode()


def _stable(ctype: str, raw: bytes, path: str) -> Any:
    """The body as stored: JSON text as is (its bytes are the contract), else base64."""
    if "json" in ctype or ctype.startswith("text/"):
        text = raw.decode("utf-8", "replace")
        if path == "/model":  # measurements, and converters that stamp each export anew
            doc = json.loads(text)
            for key in ("batching", "load_seconds", "sha256"):
                doc.pop(key, None)
            doc.get("card", {}).pop("sha256", None)
            return json.dumps(doc, sort_keys=True)
        return text
    return "base64:" + base64.b64encode(raw).decode()


def _bad_values(good: Any) -> list[tuple[str, Any]]:
    """Instances that are wrong for any model: the error paths every codec must word."""
    return [("true", True), ("null", None), ("string", "x"), ("empty_list", []),
            ("empty_object", {}), ("unknown_key", {"nope": 1}), ("huge", 1e39),
            ("nested", [[good]]), ("int_huge", 18446744073709551617)]


def cases_for(name: str, good: list[Any], columnar: Any, v2: dict[str, Any] | None,
              mutate: Callable[[Any], list[tuple[str, Any]]] | None = None) -> list[Case]:
    """Every route x case for one model kind ``name`` with valid instances ``good``."""
    one = good[:1]
    out: list[Case] = [
        ("predict_one", "POST", "/predict", {"instances": one}, {}),
        ("predict_root", "POST", "/", {"instances": one}, {}),
        ("predict_two", "POST", "/predict", {"instances": good}, {}),
        ("predict_dupes", "POST", "/predict", {"instances": good + good}, {}),
        ("predict_parameters", "POST", "/predict", {"instances": one, "parameters": {"k": 1}}, {}),
        ("predict_columns", "POST", "/predict?format=columns", {"instances": good}, {}),
        ("predict_format_bad", "POST", "/predict?format=xml", {"instances": good}, {}),
        ("predict_columnar", "POST", "/predict", {"inputs": columnar}, {}),
        ("predict_columnar_bad", "POST", "/predict", {"inputs": 3}, {}),
        ("predict_empty", "POST", "/predict", {"instances": []}, {}),
        ("predict_not_list", "POST", "/predict", {"instances": "x"}, {}),
        ("predict_no_instances", "POST", "/predict", {"rows": one}, {}),
        ("predict_body_list", "POST", "/predict", [1, 2], {}),
        ("predict_malformed", "POST", "/predict", b'{"instances": [', {}),
        ("predict_text_plain", "POST", "/predict", {"instances": one},
         {"content-type": "text/plain"}),
        ("predict_nan_literal", "POST", "/predict", b'{"instances": [NaN]}', {}),
        ("batch_two", "POST", "/batch-predict", {"instances": good}, {}),
        ("batch_columns", "POST", "/batch-predict?format=columns", {"instances": good}, {}),
        ("get_predict", "GET", "/predict", b"", {}),
        ("not_found", "GET", "/nope", b"", {}),
        ("model", "GET", "/model", b"", {}),
        ("openapi", "GET", "/openapi.json", b"", {}),
        ("v2_server", "GET", "/v2", b"", {}),
        ("v2_live", "GET", "/v2/health/live", b"", {}),
        ("v2_ready", "GET", "/v2/health/ready", b"", {}),
        ("v2_unknown_model", "POST", "/v2/models/nope/infer", {"inputs": []}, {}),
        ("openai_models", "GET", "/v1/models", b"", {}),
        ("openai_unknown_model", "POST", "/v1/embeddings", {"model": "nope", "input": "x"}, {}),
    ]
    bad = _bad_values(good[0]) + (mutate(good[0]) if mutate else [])
    for label, value in bad:
        out.append((f"predict_bad_{label}", "POST", "/predict", {"instances": [value]}, {}))
        out.append((f"batch_bad_{label}", "POST", "/batch-predict",
                    {"instances": [good[0], value, good[-1]]}, {}))
        out.append((f"batch_columns_bad_{label}", "POST", "/batch-predict?format=columns",
                    {"instances": [good[0], value, good[-1]]}, {}))
    if v2 is not None:
        model = v2["model"]
        base = f"/v2/models/{model}"
        out += [("v2_metadata", "GET", base, b"", {}), ("v2_model_ready", "GET", base + "/ready",
                                                          b"", {}),
                ("v2_config", "GET", base + "/config", b"", {}),
                ("v2_infer", "POST", base + "/infer", {"inputs": v2["inputs"]}, {}),
                ("v2_infer_binary_out", "POST", base + "/infer",
                 {"inputs": v2["inputs"], "parameters": {"binary_data_output": True}}, {}),
                ("v2_infer_id", "POST", base + "/infer", {"id": "abc", "inputs": v2["inputs"]}, {}),
                ("v2_no_inputs", "POST", base + "/infer", {"id": "abc"}, {}),
                ("v2_bad_name", "POST", base + "/infer",
                 {"inputs": [{**v2["inputs"][0], "name": "nope"}]}, {}),
                ("v2_bad_datatype", "POST", base + "/infer",
                 {"inputs": [{**v2["inputs"][0], "datatype": "INT8"}, *v2["inputs"][1:]]}, {}),
                ("v2_bad_shape", "POST", base + "/infer",
                 {"inputs": [{**v2["inputs"][0], "shape": [7, 7, 7, 7, 7]},
                             *v2["inputs"][1:]]}, {}),
                ("v2_bool_data", "POST", base + "/infer",
                 {"inputs": [{**v2["inputs"][0], "data": [True] * _size(v2["inputs"][0])},
                             *v2["inputs"][1:]]}, {}),
                ("v2_null_data", "POST", base + "/infer",
                 {"inputs": [{**v2["inputs"][0], "data": [None] * _size(v2["inputs"][0])},
                             *v2["inputs"][1:]]}, {}),
                ("v2_wrong_version", "POST", base + "/versions/9/infer",
                 {"inputs": v2["inputs"]}, {})]
    return [(f"{name}/{label}", m, p, b, h) for label, m, p, b, h in out]


def _size(tensor: dict[str, Any]) -> int:
    return int(np.prod(tensor["shape"]))


def _kinds(built: Callable[[str], tuple[Any, ...]]) -> dict[str, tuple[Path, list[Case]]]:
    """(model path, cases) for every kind the tests build (``built(kind)``)."""

    iris = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    kinds: dict[str, tuple[Path, list[Case]]] = {}
    kinds["iris"] = (ROOT / "models" / "iris.onnx", cases_for(
        "iris", iris + [dict(zip(names, iris[0]))],
        {n: [r[i] for r in iris] for i, n in enumerate(names)},
        {"model": "iris", "inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 4],
                                      "data": sum(iris, [])}]},
        lambda g: [("short_row", [1.0, 2.0]), ("nan_value", [float("nan")] * 4),
                   ("bool_value", [True, 1.0, 1.0, 1.0]), ("missing_feature",
                                                            {"sepal_length": 1.0}),
                   ("float32_overflow", [1e39, 1.0, 1.0, 1.0]),
                   ("output_overflow", [0, 0, 0, 1e38])]))
    path = built("two_input")[0]
    feats = [[0.5, 1.0, -1.0, 2.0], [1.5, 0.0, 0.25, -3.0]]
    kinds["two_input"] = (path, cases_for(
        "two_input", [{"features": feats[0], "user_id": 3}, {"features": feats[1], "user_id": 7}],
        {"features": feats, "user_id": [3, 7]},
        {"model": "two_input", "inputs": [
            {"name": "features", "datatype": "FP32", "shape": [2, 4], "data": sum(feats, [])},
            {"name": "user_id", "datatype": "INT64", "shape": [2], "data": [3, 7]}]},
        lambda g: [("id_out_of_table", {**g, "user_id": 99}),
                   ("id_fraction", {**g, "user_id": 1.5}),
                   ("id_bool", {**g, "user_id": True}),
                   ("id_int64_overflow", {**g, "user_id": 2 ** 63}),
                   ("features_short", {**g, "features": [1.0]}),
                   ("features_nan", {**g, "features": [None, 1.0, 1.0, 1.0]})]))
    path = built("image")[0]
    rng = np.random.default_rng(0)
    imgs = [np.round(rng.random((3, 32, 32)), 3).tolist() for _ in range(2)]
    kinds["image"] = (path, cases_for(
        "image", imgs, [imgs[0], imgs[1]],
        {"model": "cnn", "inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 3, 32, 32],
                                     "data": np.asarray(imgs[0]).reshape(-1).tolist()}]},
        lambda g: [("wrong_shape", [[[0.0] * 5] * 5] * 3), ("ragged", [[[0.0], [0.0, 1.0]]])]))
    path = built("string")[0]
    texts = ["the service is great", "awful slow service"]
    kinds["string"] = (path, cases_for(
        "string", texts + [["what a great place"]], texts,
        {"model": "sentiment", "inputs": [{"name": "text", "datatype": "BYTES", "shape": [2, 1],
                                           "data": texts}]},
        lambda g: [("number", 3), ("two_strings", ["a", "b"])]))
    path = built("gbdt")[0]
    from sklearn.datasets import load_breast_cancer

    rows = load_breast_cancer().data[:2].round(4).tolist()
    kinds["gbdt"] = (path, cases_for(
        "gbdt", rows, [rows[0], rows[1]],
        {"model": "cancer_lgbm", "inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 30],
                                             "data": sum(rows, [])}]},
        lambda g: [("short_row", g[:3]), ("object_row", {f"f{i}": v for i, v in enumerate(g)})]))
    path = built("bert")[0]
    sents = ["great food, great service", "never again, awful"]
    kinds["bert"] = (path, cases_for(
        "bert", sents + [{"text": "slow and awful"}], sents, None,
        lambda g: [("long_text", " ".join(["great"] * 40)), ("object_no_text", {"txt": "x"}),
                   ("empty_text", "")]))
    openai = {"model": "model", "input": sents}
    kinds["bert"][1].extend([  # the OpenAI embeddings routes (an embedding model's only)
        (f"bert/openai_{label}", "POST", "/v1/embeddings", {**openai, **change}, {})
        for label, change in [("float", {}), ("base64", {"encoding_format": "base64"}),
                              ("token_ids", {"input": [[9906, 1917]]}),
                              ("too_long", {"input": "great " * 40}),
                              ("dimensions", {"dimensions": 8})]])
    return kinds


def _runtime(env: dict[str, str]) -> Any:
    from functions.config.settings import Settings
    from functions.runtime import build
    from tests.inprocess import environment

    with environment(env):
        return build(Settings.from_env())


async def _run_cases(env: dict[str, str], cases: list[Case]) -> dict[str, Any]:
    rt = _runtime(env)
    await rt.holder.get()
    out: dict[str, Any] = {}
    for name, method, path, body, headers in cases:
        status, ctype, raw = await call(rt.router, method, path, _encode(body) if body != b""
                                        else b"", headers)
        out[name] = [status, ctype, _stable(ctype, raw, path.split("?")[0])]
    return out


async def _message_outcome(cache: Path) -> dict[str, Any]:
    """A Pub/Sub push with good and bad rows to /events on the GCS emulator: the answer and
    the objects written (results and errors)."""
    from gcp_storage_emulator.server import create_server

    from tests.inprocess import environment, forget_clients
    from tests.servers import free_port

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        env = {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
               "GOOGLE_CLOUD_PROJECT": "test-project", "EVENT_ROUTES": "true",
               "MESSAGE_OUTPUT_URI": "gs://golden/results/", "MODEL_CACHE_DIR": str(cache),
               "MODEL_URI": str(ROOT / "models" / "iris.onnx")}
        with environment({k: env[k] for k in ("STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")}):
            return await _scored_message(env)
    finally:
        server.stop()
        forget_clients()  # the SDK clients made for this emulator would outlive it


async def _scored_message(env: dict[str, str]) -> dict[str, Any]:
    from google.cloud import storage

    storage.Client(project="test-project").create_bucket("golden")
    rt = _runtime(env)
    await rt.holder.get()
    data = {"instances": [[5.1, 3.5, 1.4, 0.2], [True, 1, 1, 1], "x", [6.7, 3.0, 5.2, 2.3],
                          [5.1, 3.5, 1.4, 0.2], {"sepal_length": 1.0}, [None, 1, 1, 1]]}
    push = json.loads((ROOT / "tests" / "events" / "pubsub_push.json").read_text())
    push["message"]["data"] = base64.b64encode(json.dumps(data).encode()).decode()
    push["message"]["messageId"] = push["message"]["message_id"] = "golden-1"
    status, ctype, raw = await call(rt.router, "POST", "/events", _encode(push))
    bucket = storage.Client(project="test-project").bucket("golden")
    objects = {b.name: b.download_as_bytes().decode() for b in bucket.list_blobs()}
    return {"message/push": [status, ctype, raw.decode()], "message/objects": objects}


def collect(root: Path, built: Callable[[str], tuple[Any, ...]] | None = None
            ) -> dict[str, Any]:
    """The whole corpus, models from ``built(kind)`` (default: built under ``root``)."""
    if built is None:
        from tests.built_models import BUILDERS

        def built(kind: str) -> tuple[Any, ...]:
            return BUILDERS[kind](root / kind)

    results: dict[str, Any] = {}
    for kind, (path, cases) in _kinds(built).items():
        env = {"MODEL_URI": str(path), "MODEL_CACHE_DIR": str(root / "cache" / kind)}
        results.update(asyncio.run(_run_cases(env, cases)))
    results.update(asyncio.run(_message_outcome(root / "cache" / "message")))
    return results


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        corpus = collect(Path(tmp))
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else CORPUS
    target.write_text(json.dumps(corpus, indent=1, sort_keys=True) + "\n")
    print(f"{len(corpus)} answers -> {target}")
