"""FeatureClient against real sockets: what is retried, what is final, nothing outlives the
deadline."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from functions.config.card import LookupSpec
from functions.config.settings import Settings
from functions.lookups.client import FeatureClient, LookupFailure
from tests.feature_service import FeatureService, sepal_lookup
from tests.servers import free_port


@pytest.fixture(scope="module")
def features() -> Iterator[FeatureService]:
    service = FeatureService()
    yield service
    service.stop()


def client(**kw: float) -> FeatureClient:
    return FeatureClient(Settings(lookup_retries=2, lookup_backoff_seconds=0.01, **kw))


def fail(fc: FeatureClient, spec: LookupSpec, key: str, budget: float = 5.0) -> LookupFailure:
    with pytest.raises(LookupFailure) as info:
        fc.fetch(spec, key, time.monotonic() + budget)
    return info.value


def test_connection_errors_are_retried_then_reported() -> None:
    spec = LookupSpec(**sepal_lookup(f"http://127.0.0.1:{free_port()}"))  # nobody listens
    err = fail(client(), spec, "k")
    assert err.reason == "connect" and len(err.attempts.seconds) == 3
    assert "3 attempts" in err.message


def test_a_retry_after_beyond_the_deadline_ends_the_retries(features: FeatureService) -> None:
    features.behave("busy", fail=[429, 429], headers={"Retry-After": "60"})
    err = fail(client(), LookupSpec(**sepal_lookup(features.url)), "busy")
    assert err.reason == "status_4xx" and features.calls["busy"] == 1


def test_no_call_starts_after_the_deadline(features: FeatureService) -> None:
    err = fail(client(), LookupSpec(**sepal_lookup(features.url)), "late", budget=0.0)
    assert err.reason == "deadline" and features.calls["late"] == 0


def test_keys_are_percent_encoded(features: FeatureService) -> None:
    fetched = client().fetch(LookupSpec(**sepal_lookup(features.url)), "a/b c?d",
                             time.monotonic() + 5)
    assert features.calls["a/b c?d"] == 1 and set(fetched.values) == {"sepal_length",
                                                                      "sepal_width"}
