"""schemathesis fuzzes the function from its own /openapi.json with every check it has
(the authentication checks excluded: the function has no authentication of its own; the
platform's IAM does that), in process through the ASGI app of the real Router.

Cases that fit the document must be accepted, cases that do not must be refused with a
documented 4xx, every answer must fit the documented status, content type, headers and
schema, and a 405 must say which methods are allowed. The rejections no JSON Schema can
state are documented in the document itself and asserted here by their error code
(``DOCUMENTED_REJECTIONS``): a value the model refuses, a non-finite value the card's
policy refuses after a cast, a model output that is not finite, a model not loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import ignored_auth
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    object_level_authorization,
    positive_data_acceptance,
)
from starlette.requests import Request

from functions.config.settings import Settings
from functions.runtime import Runtime, build
from tests.built_models import BUILDERS, BuiltModels

pytestmark = pytest.mark.spread  # each case list a unit of its own under pytest-xdist
EXCLUDED = [ignored_auth, object_level_authorization]
DOCUMENTED_CODES = {"columns_differ_in_length", "model_refused", "non_finite_output",
                    "not_an_event", "context_length_exceeded"}
"""Refusals of requests that fit the document, which no JSON Schema can state (each named
in the document's 422 description)."""
V2_DOCUMENTED = ("elements but 'data' has", "'data' is ragged", "the model refused the inputs",
                 "binary_data_size", "are not the JSON header", "body is not valid JSON",
                 "is not finite (NaN or infinity)")
"""The same for /v2, whose error shape has a message only (named in its 400 description);
a binary body is a byte string to JSON Schema."""


def documented_rejection(case: schemathesis.Case, response: Any) -> bool:
    """Whether ``response`` refuses a fitting request for a documented reason."""
    if response.status_code not in (400, 422):
        return False
    if case.media_type == "application/octet-stream":
        return True  # a binary /v2 body: a byte string to JSON Schema
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    if isinstance(error, dict):
        return error.get("code") in DOCUMENTED_CODES
    return isinstance(error, str) and any(m in error for m in V2_DOCUMENTED)
CASES = {GenerationMode.POSITIVE: 250, GenerationMode.NEGATIVE: 150}
KINDS = ("iris", "two_input", "string", "bert", "minilm")
"""The demo model, the session's built kinds (tests/built_models.py) and MiniLM."""
EMBEDDING_KINDS = ("bert", "minilm")
"""Embedding models with a tokenizer: the OpenAI routes are in their documents."""


def asgi(rt: Runtime) -> Callable[..., Any]:
    """The Router as an ASGI app (what main.predict hands functions-framework)."""
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        response = await rt.router(Request(scope, receive))
        await response(scope, receive, send)
    return app


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory: pytest.TempPathFactory, gcs_server: str,
             built_model: BuiltModels, request: pytest.FixtureRequest) -> dict[str, Runtime]:
    """kind -> its runtime, built on first use (a worker that runs one kind's cases loads
    only that model); the demo model's with POST /events mounted, writing to the GCS
    emulator (messages are scored or kept as poison; storage events name an unwatched
    bucket)."""
    root = tmp_path_factory.mktemp("fuzz")

    class Runtimes(dict):
        def __missing__(self, kind: str) -> Runtime:
            import asyncio

            extra: dict[str, Any] = {}
            if kind in BUILDERS:  # each kind built once per session
                extra["model_uri"] = str(built_model(kind)[0])
            elif kind == "minilm":  # all-MiniLM-L6-v2 from its PyPI package, exported once
                extra["model_uri"] = str(request.getfixturevalue("minilm_model"))
            else:  # events score into, and keep poison in, a bucket of the emulator
                from google.cloud import storage

                storage.Client(project="test-project").create_bucket("fuzz-events")
                extra.update(event_routes=True, watch_bucket="no-such-bucket",
                             message_output_uri="gs://fuzz-events/results/")
            rt = self[kind] = build(Settings(model_cache_dir=root / f"cache-{kind}", **extra))
            asyncio.run(rt.holder.get())
            return rt

    return Runtimes()


def fuzz(rt: Runtime, mode: GenerationMode, budget: int) -> dict[str, int]:
    """Every operation of the function's own document; cases sent per operation."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", asgi(rt))
    return run_schema(schema, mode, budget, documented_rejection)


def run_schema(schema: Any, mode: GenerationMode, budget: int,
               excused: Callable[[schemathesis.Case, Any], bool]) -> dict[str, int]:
    """Up to ``budget`` cases per operation of ``schema``, every check but the auth ones
    (``positive_data_acceptance`` too where ``excused(case, response)``, a refusal the
    document names); returns how many were sent per operation."""
    sent: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        sent[operation.label] = 0

        @settings(max_examples=budget, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case) -> None:
            sent[operation.label] += 1  # noqa: B023 - run() is called in this iteration
            response = case.call()
            excluded = EXCLUDED + [positive_data_acceptance] \
                if excused(case, response) else EXCLUDED
            case.validate_response(response, excluded_checks=excluded)

        try:
            run()
        except Unsatisfiable:  # nothing to break: no parameter, no body (negative mode)
            assert mode is GenerationMode.NEGATIVE
            del sent[operation.label]
        except Exception as exc:
            raise AssertionError(f"{operation.label} ({mode.value}): {exc}") from exc
    return sent


@pytest.mark.parametrize("mode", list(CASES), ids=lambda m: m.value)
def test_the_demo_model_and_events_agree_with_their_document(runtimes, mode) -> None:
    sent = fuzz(runtimes["iris"], mode, CASES[mode])
    print(f"{mode.value}: {sum(sent.values())} cases", sent)
    every = 19 if mode is GenerationMode.POSITIVE else 9  # negative: those with inputs
    assert len(sent) >= every and all(sent.values()), sent
    for label in ("POST /predict", "POST /batch-predict", "POST /v2/models/{model_name}/infer"):
        assert sent[label] >= CASES[mode] // 2, sent


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "iris"])
@pytest.mark.parametrize("mode", list(CASES), ids=lambda m: m.value)
def test_every_model_kind_agrees_with_its_document(runtimes, kind: str, mode) -> None:
    sent = fuzz(runtimes[kind], mode, CASES[mode] // 3)
    assert sent["POST /predict"] and sent["POST /v2/models/{model_name}/infer"], sent
    if kind in EMBEDDING_KINDS:
        assert sent["POST /v1/embeddings"] and sent["POST /embeddings"], sent
