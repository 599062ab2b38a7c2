"""Blocking HTTP calls to a feature service: one pooled ``requests.Session`` per process.

Contract of ``FeatureClient.fetch(spec, key, deadline)`` (runs in a worker thread):
- returns ``Fetched`` (feature name -> float, JSON ``null`` -> NaN) for a 2xx JSON answer
  that holds every mapped field as a number or null;
- raises ``LookupFailure`` otherwise, never anything else for network trouble;
- every attempt has a connect and a read timeout, both cut to what is left of ``deadline``
  (a ``time.monotonic()`` value); no attempt starts after the deadline;
- retries, with exponential backoff, only connection errors (connect timeouts included)
  and 5xx/429 answers. A 4xx, a read timeout, or a malformed answer is final: repeating
  it would only spend the deadline of the items that are still fine.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from functions.config.card import LookupSpec
from functions.config.settings import Settings
from functions.telemetry import spans

if TYPE_CHECKING:
    import requests


@dataclass
class Attempts:
    """What the calls for one key cost: one duration per HTTP attempt (for metrics)."""

    seconds: list[float] = field(default_factory=list)


@dataclass
class Fetched:
    values: dict[str, float]
    attempts: Attempts


class LookupFailure(Exception):
    """A lookup that failed for good; ``reason`` is a short metric label."""

    def __init__(self, message: str, reason: str, attempts: Attempts | None = None,
                 retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.attempts = attempts or Attempts()
        self.retry_after = retry_after


def build_url(spec: LookupSpec, key: str) -> str:
    """The spec's URL with ``{key}`` replaced by the percent-encoded key."""
    return spec.url_template.replace("{key}", quote(key, safe=""))


def extract(answer: Any, spec: LookupSpec) -> dict[str, float]:
    """Map a JSON answer onto feature names via the spec's dotted paths."""
    out: dict[str, float] = {}
    for feature, path in spec.features.items():
        node = answer
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                raise LookupFailure(f"answer has no field {path!r} (for feature {feature!r})",
                                    "malformed")
            node = node[part]
        if node is None:
            out[feature] = math.nan
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            out[feature] = float(node)
        else:
            raise LookupFailure(f"answer field {path!r} is {type(node).__name__}, "
                                "not a number", "malformed")
    return out


class FeatureClient:
    """The process's session and retry policy for feature-service calls."""

    def __init__(self, settings: Settings) -> None:
        # requests is imported here, on the first lookup, not at cold start (~90 ms).
        import requests
        from requests.adapters import HTTPAdapter

        self.settings = settings
        self.session = requests.Session()
        # Off by default: reading proxy variables and ~/.netrc on every call costs more
        # CPU than the call itself on a 1-2 vCPU instance (see docs/feature_lookups.md).
        self.session.trust_env = settings.lookup_trust_env
        # Pool as many connections as calls may run at once, so none waits for a socket.
        size = max(1, settings.lookup_concurrency)
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def fetch(self, spec: LookupSpec, key: str, deadline: float) -> Fetched:
        """See the module docstring."""
        url = build_url(spec, key)
        attempts = Attempts()
        failure: LookupFailure | None = None
        for _ in range(self.settings.lookup_retries + 1):
            if failure is not None:
                self._backoff(len(attempts.seconds), deadline, failure)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LookupFailure("lookup deadline exceeded", "deadline", attempts)
            started = time.monotonic()
            try:
                outcome = self._attempt(url, spec, remaining)
            except LookupFailure as exc:
                exc.attempts = attempts
                raise
            finally:
                attempts.seconds.append(time.monotonic() - started)
            if not isinstance(outcome, LookupFailure):
                return Fetched(outcome, attempts)
            failure = outcome
            failure.attempts = attempts
        assert failure is not None
        if len(attempts.seconds) > 1:
            failure.message += f" ({len(attempts.seconds)} attempts)"
        raise failure

    def _attempt(self, url: str, spec: LookupSpec,
                 remaining: float) -> dict[str, float] | LookupFailure:
        """One call: values, a retryable failure (returned), or a final one (raised)."""
        import requests

        s = self.settings
        read = min(s.lookup_read_timeout, remaining)
        try:
            with spans.client("lookup", **{"url.full": url}):  # tracing on: sends traceparent
                resp = self.session.get(url, headers=spans.outgoing(),
                                        timeout=(min(s.lookup_connect_timeout, remaining), read))
                spans.annotate(**{"http.response.status_code": resp.status_code})
        except requests.ConnectionError as exc:  # includes ConnectTimeout: retried
            return LookupFailure(f"cannot connect: {type(exc).__name__}", "connect")
        except requests.Timeout:
            raise LookupFailure(f"no answer within {read:g}s", "timeout") from None
        except requests.RequestException as exc:
            raise LookupFailure(f"request failed: {exc}", "request") from None
        status = resp.status_code
        if status == 429 or status >= 500:
            return LookupFailure(f"feature service answered {status}", f"status_{status // 100}xx",
                                 retry_after=_retry_after(resp))
        if status >= 400:
            raise LookupFailure(f"feature service answered {status}", "status_4xx")
        try:
            answer = json.loads(resp.content)
        except ValueError:
            raise LookupFailure("answer is not valid JSON", "malformed") from None
        return extract(answer, spec)

    def _backoff(self, done: int, deadline: float, last: LookupFailure) -> None:
        """Sleep before the next try; give up (raise ``last``) if that would pass the deadline."""
        wait = max(self.settings.lookup_backoff_seconds * (2 ** (done - 1)), last.retry_after)
        if time.monotonic() + wait >= deadline:
            raise last
        time.sleep(wait)


def _retry_after(resp: requests.Response) -> float:
    """Seconds from a numeric Retry-After header (dates are ignored), else 0."""
    value = resp.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return 0.0
