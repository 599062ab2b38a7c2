"""schemathesis fuzzes the served function from its own /openapi.json: every operation,
cases that fit the document and cases that do not, against the production server.

Checks: no 5xx, every status code and content type is one the document lists for that
operation, and every answer fits the documented schema of its status. A few thousand
cases in all: up to ``CASES`` per operation and mode (an operation without parameters or
body has one case; hypothesis stops when it has seen them all).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.servers import Served, start_function

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
CASES = {GenerationMode.POSITIVE: 250, GenerationMode.NEGATIVE: 150}


@pytest.fixture(scope="module")
def events_function(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The demo model with POST /events mounted (nothing it could write to: events fail
    as not-found or poison, which must still be documented answers)."""
    served = start_function({"EVENT_ROUTES": "true", "WATCH_BUCKET": "no-such-bucket"},
                            tmp_path_factory.mktemp("fuzz"))
    yield served
    served.stop()


def fuzz(fn: Served, mode: GenerationMode) -> dict[str, int]:
    """Run every operation's cases; returns how many were sent per operation."""
    schema = schemathesis.openapi.from_url(fn.url + "/openapi.json")
    sent: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        sent[operation.label] = 0

        @settings(max_examples=CASES[mode], deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=fn.url, timeout=30)
            # functions-framework routes with Starlette's "/{path:path}", whose "." stops at
            # a newline: such a URL gets its plain 404 before our code runs (reported)
            assume(response.status_code != 404 or "%0A" not in response.request.url.upper())
            sent[operation.label] += 1  # noqa: B023 - run() is called in this iteration
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:  # nothing to break: no parameter, no body (negative mode)
            assert mode is GenerationMode.NEGATIVE and not sent[operation.label]
            del sent[operation.label]
        except Exception as exc:
            raise AssertionError(f"{operation.label} ({mode.value}): {exc}") from exc
    return sent


@pytest.mark.parametrize("mode", list(CASES), ids=lambda m: m.value)
def test_every_operation_from_the_document(events_function: Served,
                                           mode: GenerationMode) -> None:
    sent = fuzz(events_function, mode)
    print(f"{mode.value}: {sum(sent.values())} cases", sent)
    every = 19 if mode is GenerationMode.POSITIVE else 9  # negative: those with inputs
    assert len(sent) >= every and all(sent.values()), sent  # all but /openapi.json itself
    for label in ("POST /predict", "POST /batch-predict", "POST /v2/models/{model_name}/infer"):
        assert sent[label] >= CASES[mode] // 2, sent
    assert events_function.proc.poll() is None
