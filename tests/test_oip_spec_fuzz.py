"""schemathesis with every check (authentication checks excluded) against the Open
Inference Protocol's own published REST specification, ``specification/protocol/
open_inference_rest.yaml`` of kserve/open-inference-protocol (Apache License 2.0), its
``${MODEL_NAME}`` and ``${MODEL_VERSION}`` placeholders pinned to the served demo model,
in process through the Router's ASGI app (as tests/test_openapi_fuzz.py does with our own
document).

The document is read from tests/oip/open_inference_rest.yaml (vendored) or, when that is
absent, from .cache/specs/open_inference_rest.yaml; ``SPEC_SOURCE`` names where it comes
from. The spec's own looseness, which the function cannot and should not follow, is
explained where it is excused (``_refused_for_the_model``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
import yaml
from schemathesis.generation.modes import GenerationMode

from tests.inprocess import InProcess
from tests.servers import ROOT
from tests.test_openapi_fuzz import run_schema

pytestmark = pytest.mark.spread  # each mode a unit of its own under pytest-xdist
SPEC_SOURCE = ("https://github.com/kserve/open-inference-protocol/blob/"
               "d49cc23/specification/protocol/open_inference_rest.yaml")
PLACES = [ROOT / "tests" / "oip" / "open_inference_rest.yaml",
          ROOT / ".cache" / "specs" / "open_inference_rest.yaml"]
PINNED = {"${MODEL_NAME}": "iris", "${MODEL_VERSION}": "1"}
CASES = {GenerationMode.POSITIVE: 150, GenerationMode.NEGATIVE: 100}


def _spec() -> dict[str, Any]:
    path = next((p for p in PLACES if p.exists()), None)
    if path is None:
        pytest.skip(f"the Open Inference Protocol's spec is not at {PLACES[0]} or "
                    f"{PLACES[1]}: save {SPEC_SOURCE} there")
    text = path.read_text()
    for placeholder, value in PINNED.items():
        text = text.replace(placeholder, value)
    spec = yaml.safe_load(text)
    for item in spec["paths"].values():  # the pinned path parameters are no parameters now
        item.pop("parameters", None)
    return spec


def _asgi(served: InProcess) -> Callable[..., Any]:
    return served.client.app


def _refused_for_the_model(case: schemathesis.Case, response: Any) -> bool:
    """A 400 in the protocol's shape: a spec-fitting request the served model refuses. The
    spec's inference_request takes any inputs (any name, shape, datatype and data): it
    cannot state a model's signature, so such a request is refused, never a success."""
    if response.status_code != 400:
        return False
    try:
        return isinstance(response.json()["error"], str)
    except (ValueError, KeyError, TypeError):
        return False


@pytest.mark.parametrize("mode", list(CASES), ids=lambda m: m.value)
def test_the_function_agrees_with_the_protocols_own_spec(demo_app: InProcess, mode) -> None:
    schema = schemathesis.openapi.from_dict(_spec())
    schema.app = _asgi(demo_app)
    sent = run_schema(schema, mode, CASES[mode], _refused_for_the_model)
    print(f"{mode.value}: {sent}")
    assert all(sent.values()) and sent, sent
    if mode is GenerationMode.POSITIVE:
        assert len(sent) == 6, sent  # every operation of the spec
