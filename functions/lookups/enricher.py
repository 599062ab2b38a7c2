"""External feature lookups: the ``Enricher`` the PredictionService calls before the model.

For the rows of a request that passed validation, per lookup spec (card ``lookups`` or the
LOOKUP_SPECS setting):
- a row needs the lookup only if it lacks one of the spec's features (features the
  instance carries itself always win); it must then carry a usable key in ``key_field``,
  else it fails with 422 naming the index and the key field;
- keys are de-duplicated across the request; cached values are used at once; the misses
  are fetched in parallel on the process's thread pool (``lookup_concurrency`` threads,
  one pooled session), and a fetch already running for another request is shared;
- the whole step ends by ``lookup_deadline_seconds``; a key that failed for good (or ran
  out of time) gives its rows the spec's ``defaults`` if declared, else a per-item 424
  ``lookup_failed``. Other rows are unaffected, nothing is cached for failed keys.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Hashable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from functions import metrics
from functions.codecs.tabular import Decoded, Schema
from functions.config.card import LookupSpec, ModelCard
from functions.config.settings import Settings
from functions.errors import ItemError, Problem
from functions.loading.holder import ModelHolder
from functions.lookups.cache import LookupCache, Values
from functions.lookups.client import FeatureClient, Fetched, LookupFailure
from functions.telemetry import spans

log = logging.getLogger(__name__)
MAX_KEY_CHARS = 256
SpecKey = tuple[str, tuple[tuple[str, str], ...]]


def effective_specs(card: ModelCard, settings: Settings) -> list[LookupSpec]:
    """The lookups in force: LOOKUP_SPECS when set, else the card's."""
    return list(settings.lookup_specs) if settings.lookup_specs is not None else card.lookups


def lookup_config(settings: Settings) -> dict[str, Any]:
    """The runtime knobs of the lookup step, for GET /model."""
    return {name: getattr(settings, name) for name in (
        "lookup_concurrency", "lookup_connect_timeout", "lookup_read_timeout",
        "lookup_deadline_seconds", "lookup_retries", "lookup_backoff_seconds",
        "lookup_cache_size", "lookup_cache_ttl_seconds")}


def _spec_key(spec: LookupSpec) -> SpecKey:
    """What makes two specs' answers interchangeable in the cache."""
    return spec.url_template, tuple(sorted(spec.features.items()))


def read_key(instance: Any, field: str, index: int) -> tuple[str | None, Problem | None]:
    """The lookup key of one instance as a string, or the problem with it."""
    if not isinstance(instance, dict):
        return None, Problem(f"needs a {field!r} key to look features up; "
                             "send the instance as an object", index, field)
    if field not in instance:
        return None, Problem("missing lookup key (or send the looked-up features)", index, field)
    key = instance[field]
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        return None, Problem(f"lookup key must be a string or an integer, "
                             f"got {type(key).__name__}", index, field)
    text = str(key)
    if not text or len(text) > MAX_KEY_CHARS:
        return None, Problem(f"lookup key must be 1 to {MAX_KEY_CHARS} characters", index, field)
    return text, None


class LookupEnricher:
    """Implements ``functions.service.Enricher``; a no-op while no lookups are declared."""

    def __init__(self, holder: ModelHolder, settings: Settings) -> None:
        self.holder = holder
        self.settings = settings
        self.cache = LookupCache(settings.lookup_cache_size, settings.lookup_cache_ttl_seconds)
        self._pool: ThreadPoolExecutor | None = None
        self._client: FeatureClient | None = None
        self._inflight: dict[Hashable, Future[Fetched]] = {}

    # -- what row validation needs to know --------------------------------------------------
    def specs(self) -> list[LookupSpec]:
        model = self.holder.model
        return effective_specs(model.card, self.settings) if model is not None else []

    def optional_features(self) -> frozenset[str]:
        """Features an instance may leave out because a lookup supplies them."""
        return frozenset(f for spec in self.specs() for f in spec.features)

    def extra_fields(self) -> frozenset[str]:
        """Instance fields that are not features but are allowed: the lookup keys."""
        return frozenset(spec.key_field for spec in self.specs())

    # -- the step ------------------------------------------------------------------------
    async def enrich(self, instances: Sequence[Any], decoded: Decoded, schema: Schema,
                     rows: np.ndarray, failures: dict[int, ItemError]) -> None:
        """Fill looked-up features into ``decoded.matrix``; see the module docstring."""
        specs = self.specs()
        if not specs:
            return
        started = time.monotonic()
        deadline = started + self.settings.lookup_deadline_seconds
        plans = [self._plan(spec, instances, schema, rows, failures) for spec in specs]
        wanted = {(_spec_key(spec), key): spec for spec, plan in zip(specs, plans) for key in plan}
        if not wanted:
            return
        with spans.span("lookups", keys=len(wanted)):
            found = await self._resolve(wanted, deadline)
        for spec, plan in zip(specs, plans):
            for key, targets in plan.items():
                self._write(spec, key, found[(_spec_key(spec), key)], targets, instances,
                            decoded, schema, failures)
        metrics.observe("lookup_step", time.monotonic() - started,
                        "time spent in the lookup step per request")

    def _plan(self, spec: LookupSpec, instances: Sequence[Any], schema: Schema,
              rows: np.ndarray, failures: dict[int, ItemError]) -> dict[str, list[int]]:
        """key -> rows that need this spec's lookup; bad keys go to ``failures``."""
        names = [f for f in spec.features if f in schema.feature_names]
        plan: dict[str, list[int]] = {}
        for i in rows.tolist():
            inst = instances[i]
            if i in failures or not isinstance(inst, dict) or all(f in inst for f in names):
                continue  # a list that passed validation is complete; so is a full object
            key, problem = read_key(inst, spec.key_field, i)
            if problem is not None:
                failures[i] = ItemError([problem], 422, "invalid_lookup_key")
                continue
            plan.setdefault(key, []).append(i)  # type: ignore[arg-type]
        return plan

    async def _resolve(self, wanted: dict[tuple[SpecKey, str], LookupSpec],
                       deadline: float) -> dict[Hashable, Values | LookupFailure]:
        """Values (or the failure) for every wanted key: cache first, then parallel fetches."""
        found: dict[Hashable, Values | LookupFailure] = {}
        misses: dict[Hashable, asyncio.Future[Fetched]] = {}
        owned: set[Hashable] = set()  # fetches this request started (the others are shared)
        for ck, spec in wanted.items():
            hit = self.cache.get(ck)
            if hit is not None:
                found[ck] = hit
                continue
            fut, started = self._submit(ck, spec, deadline)
            misses[ck] = asyncio.wrap_future(fut)
            if started:
                owned.add(ck)
        metrics.inc("lookup_cache_hits_total", len(found), "lookup keys served from the cache")
        spans.annotate(**{"lookup.cache_hits": len(found), "lookup.cache_misses": len(misses)})
        metrics.inc("lookup_cache_misses_total", len(misses), "lookup keys fetched")
        if misses:
            await asyncio.wait(misses.values(), timeout=max(0.0, deadline - time.monotonic()))
        for ck, fut in misses.items():
            found[ck] = self._outcome(fut, ck in owned)
        return found

    def _submit(self, ck: Hashable, spec: LookupSpec,
                deadline: float) -> tuple[Future[Fetched], bool]:
        """(fetch, started here): the running fetch for ``ck`` (shared), or a new one.

        This is ``loop.run_in_executor`` unrolled: the concurrent future is kept so a second
        request for the same key (on any event loop) awaits the same call.
        """
        running = self._inflight.get(ck)
        if running is not None:
            return running, False
        if self._pool is None:  # created on first use: no threads or sockets at cold start
            self._pool = ThreadPoolExecutor(self.settings.lookup_concurrency, "lookup")
            self._client = FeatureClient(self.settings)
        fut = self._pool.submit(spans.in_context(self._client.fetch),  # type: ignore
                                spec, ck[1], deadline)
        self._inflight[ck] = fut
        fut.add_done_callback(lambda done: self._settle(ck, done))
        return fut, True

    def _settle(self, ck: Hashable, fut: Future[Fetched]) -> None:
        """In the worker thread, as the fetch ends: cache a success, then stop sharing it.

        An answer with null features is a failure for a model that needs numbers (see
        ``_write``), and failures are never cached.
        """
        if not fut.cancelled() and fut.exception() is None:
            values = fut.result().values
            model = self.holder.model
            if (model is not None and model.card.allow_nan) or \
                    not any(math.isnan(v) for v in values.values()):
                self.cache.put(ck, values)
        self._inflight.pop(ck, None)

    def _outcome(self, fut: asyncio.Future[Fetched], owned: bool) -> Values | LookupFailure:
        """One fetch's values or failure; the request that started it records the metrics."""
        if not fut.done():
            fut.add_done_callback(_consume)  # it finishes in its thread; nobody waits for it
            if owned:
                metrics.inc('lookup_errors_total{reason="deadline"}', 1, "lookups failed for good")
            return LookupFailure("lookup deadline exceeded", "deadline")
        exc = fut.exception()
        outcome: Fetched | LookupFailure
        if exc is None:
            outcome = fut.result()
        elif isinstance(exc, LookupFailure):
            outcome = exc
        else:  # a bug in our client: report it on this item, never crash the batch
            log.error("lookup raised unexpectedly", exc_info=exc)
            outcome = LookupFailure(f"internal error: {type(exc).__name__}", "internal")
        if owned:
            for seconds in outcome.attempts.seconds:
                metrics.observe("lookup_request", seconds, "feature-service HTTP calls")
        if isinstance(outcome, LookupFailure):
            if owned:
                metrics.inc(f'lookup_errors_total{{reason="{outcome.reason}"}}', 1,
                            "lookups failed for good")
            return outcome
        return outcome.values

    def _write(self, spec: LookupSpec, key: str, got: Values | LookupFailure, targets: list[int],
               instances: Sequence[Any], decoded: Decoded, schema: Schema,
               failures: dict[int, ItemError]) -> None:
        """Put one key's values into its rows (features the instance carries win)."""
        if not isinstance(got, LookupFailure) and not schema.allow_nan \
                and any(math.isnan(v) for v in got.values()):
            got = LookupFailure("answer has null features and the model needs numbers", "null")
            metrics.inc('lookup_errors_total{reason="null"}', 1, "lookups failed for good")
        if isinstance(got, LookupFailure):
            if spec.defaults is None or not set(spec.features) <= set(spec.defaults):
                for i in targets:
                    failures[i] = ItemError([Problem(
                        f"lookup of {spec.key_field}={key!r} failed: {got.message}",
                        i, spec.key_field)], 424, "lookup_failed")
                return
            metrics.inc("lookup_defaults_used_total", len(targets),
                        "rows given the declared default features after a failed lookup")
            got = {f: float(v) for f, v in spec.defaults.items()}
        for feature, value in got.items():
            if feature not in schema.feature_names:
                continue
            rows = [i for i in targets if feature not in instances[i]]
            decoded.matrix[rows, schema.feature_names.index(feature)] = value


def _consume(fut: asyncio.Future[Any]) -> None:
    """Fetch the late result so asyncio does not log 'exception was never retrieved'."""
    if not fut.cancelled():
        fut.exception()
