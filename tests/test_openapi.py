"""GET /openapi.json: a valid OpenAPI 3.1 document of the served model, every route in it,
and what the function really accepts and answers fits what it says.

The demo model is checked through the real app in process; every other kind of model
(two inputs, image tensors, a string pipeline, GBDT with ZipMap, a BERT with its
tokenizer) is checked in-process through the real wiring: the document validates, the
instances the other tests send fit its request schema, and the core's answers fit its
prediction schema.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from functions.codecs.predict_bodies import items
from functions.config.settings import Settings
from functions.runtime import Runtime
from tests.built_models import BuiltModels
from tests.inprocess import InProcess
from tests.servers import ready_runtime

SETOSA = [5.1, 3.5, 1.4, 0.2]


def check(doc: dict, name: str, value: Any) -> None:
    """``value`` fits ``#/components/schemas/name`` of ``doc`` (refs resolved in it)."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    OAS31Validator(schema).validate(value)


def fits(doc: dict, name: str, value: Any) -> bool:
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    return OAS31Validator(schema).is_valid(value)


def response_schema(doc: dict, path: str, method: str, status: int) -> dict:
    answer = doc["paths"][path][method]["responses"][str(status)]
    return {**answer["content"]["application/json"]["schema"],
            "components": doc["components"]}


def test_served_document_validates_and_lists_every_route(demo_app: InProcess) -> None:
    doc = demo_app.get("/openapi.json").json()
    validate(doc)
    assert doc["openapi"] == "3.1.0" and doc["info"]["version"] == "1"
    paths = set(doc["paths"])
    assert {"/predict", "/batch-predict", "/healthz", "/readyz", "/model", "/metrics",
            "/openapi.json", "/docs", "/v2", "/v2/health/live", "/v2/health/ready",
            "/v2/models/{model_name}/infer",
            "/v2/models/{model_name}/versions/{model_version}/infer"} <= paths
    assert "/events" not in paths  # EVENT_ROUTES is off here
    names = doc["components"]["schemas"]["Instance"]["anyOf"][1]["properties"]
    assert list(names) == ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def test_real_answers_fit_the_documented_schemas(demo_app: InProcess) -> None:
    doc = demo_app.get("/openapi.json").json()
    for body in ({"instances": [SETOSA]}, {"inputs": [SETOSA, SETOSA]},
                 {"instances": [dict(zip(["sepal_length", "sepal_width", "petal_length",
                                          "petal_width"], SETOSA))]}):
        request = doc["paths"]["/predict"]["post"]["requestBody"]["content"]
        OAS31Validator({**request["application/json"]["schema"],
                        "components": doc["components"]}).validate(body)
        resp = demo_app.post("/predict", json=body)
        assert resp.status_code == 200
        OAS31Validator(response_schema(doc, "/predict", "post", 200)).validate(resp.json())
    batch = demo_app.post("/batch-predict", json={"instances": [SETOSA, [1, 2]]})
    OAS31Validator(response_schema(doc, "/batch-predict", "post", 200)).validate(batch.json())
    bad = demo_app.post("/predict", json={"instances": [[1, 2]]})
    OAS31Validator(response_schema(doc, "/predict", "post", 422)).validate(bad.json())
    infer = demo_app.post("/v2/models/iris/infer", json={"inputs": [{
        "name": "input", "datatype": "FP32", "shape": [1, 4], "data": SETOSA}]})
    path = "/v2/models/{model_name}/infer"
    OAS31Validator(response_schema(doc, path, "post", 200)).validate(infer.json())
    wrong = demo_app.post("/v2/models/iris/infer", json={"inputs": []})
    OAS31Validator(response_schema(doc, path, "post", 400)).validate(wrong.json())
    # a wrong label set is caught: the schema says what the labels are
    assert not fits(doc, "Prediction", {"label": "rose", "probabilities": {}})


def test_docs_page_loads_nothing_from_elsewhere(demo_app: InProcess) -> None:
    resp = demo_app.get("/docs")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert 'fetch("openapi.json")' in resp.text
    assert "http://" not in resp.text and "https://" not in resp.text and "src=" not in resp.text


def _document(rt: Runtime) -> dict:
    handler = rt.router.exact["/openapi.json"]["GET"]
    return orjson.loads(asyncio.run(handler(None)).body)  # type: ignore[arg-type]


def test_every_router_route_is_documented_with_events_and_vertex(tmp_path: Path) -> None:
    rt = ready_runtime(Settings(event_routes=True, aip_predict_route="/vertex/predict",
                         aip_health_route="/vertex/health", model_cache_dir=tmp_path))
    doc = _document(rt)
    validate(doc)
    for path, methods in rt.router.exact.items():
        for method in methods:
            assert method.lower() in doc["paths"][path], (method, path)
    assert all(any(p.startswith(prefix) for p in doc["paths"]) for prefix, _ in
               rt.router.prefixes)
    assert doc is not _document(rt) and _document(rt) == doc  # cached bytes, same document


async def _predictions(rt: Runtime, instances: list) -> list:
    model = await rt.service.model()
    scored = await rt.service.predict(model, rt.service.plan(model).decode(instances),
                                      strict=True)
    # as the client reads them: items hold arrays (a row's vector), which orjson writes
    return orjson.loads(orjson.dumps(items(scored), option=orjson.OPT_SERIALIZE_NUMPY))


KINDS = {
    "two_input": [{"features": [0.5, 1.0, -1.0, 2.0], "user_id": 3}],
    "image": [[[[0.0] * 32] * 32] * 3],
    "string": ["the service is great", ["awful slow service"]],
    "gbdt": [[0.5] * 30],
    "bert": ["great food", {"text": "slow and awful"}],
}
"""kind (tests/built_models.py) -> instances its document must accept."""


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_of_model_gets_a_document_its_answers_fit(kind: str, tmp_path: Path,
                                                           built_model: BuiltModels) -> None:
    instances = KINDS[kind]
    model_path = built_model(kind)[0]
    rt = ready_runtime(Settings(model_uri=str(model_path), model_cache_dir=tmp_path / "cache"))
    doc = _document(rt)
    validate(doc)
    for instance in instances:
        check(doc, "Instance", instance)
    assert not fits(doc, "Instance", {"no such input": 1})
    for prediction in asyncio.run(_predictions(rt, instances)):
        check(doc, "Prediction", prediction)
    infer = doc["components"]["schemas"]["V2InferRequest"]["properties"]["inputs"]["items"]
    assert [s["properties"]["name"]["const"] for s in infer["anyOf"]] == [
        s.name for s in rt.holder.model.inputs]
