"""Wiring: one Settings, stores, holder, runners, service and router per process.

``runtime()`` builds them on first call and starts the model load right away, so the load
overlaps whatever the platform does between importing ``main.py`` and the first request.
This is the only module that knows every part; the adapters (HTTP routes, Open Inference
Protocol, events, Lambda) are each handed what they use, and none of them imports this one.
The events side and the Lambda adapter are built on first use: an HTTP-only process
never imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from functions import logs
from functions.codecs.tokens import read_ahead
from functions.config.settings import Settings
from functions.http.admission import Admission
from functions.http.docs_routes import docs_routes
from functions.http.openapi import OpenApiDocs
from functions.http.router import Router
from functions.http.routes import prediction_routes
from functions.http.shutdown import Drain
from functions.loading.early_fetch import arbiter_will_fork
from functions.loading.holder import ModelHolder
from functions.loading.pointer import is_pointer
from functions.loading.stores import Stores
from functions.lookups.enricher import LookupEnricher
from functions.model.runner import Runners
from functions.oip.routes import error_json, oip_routes
from functions.openai.routes import openai_routes
from functions.service import PredictionService

if TYPE_CHECKING:
    from functions.aws.lambda_adapter import LambdaAdapter
    from functions.events.dispatch import EventHandlers


@dataclass
class Runtime:
    """Everything one serving process owns."""

    settings: Settings
    stores: Stores
    holder: ModelHolder
    service: PredictionService
    router: Router
    admission: Admission
    """Memory for requests in flight, shared by the prediction routes and event pushes."""
    _lazy: dict[str, Any] = field(default_factory=dict, repr=False)

    def events(self) -> EventHandlers:
        """The event handlers (storage, messages, roll-out), built on first use."""
        if "events" not in self._lazy:
            from functions.events.dispatch import EventHandlers

            self._lazy["events"] = EventHandlers.build(self.settings, self.holder, self.service,
                                                       self.stores)
        return self._lazy["events"]

    def lambda_adapter(self) -> LambdaAdapter:
        """The AWS Lambda handler over this router and these event handlers."""
        if "lambda" not in self._lazy:
            from functions.aws.lambda_adapter import LambdaAdapter

            self._lazy["lambda"] = LambdaAdapter(self.router, self.events)
        return self._lazy["lambda"]


def build(settings: Settings) -> Runtime:
    """Wire one process for ``settings``; the model load starts before this returns."""
    logs.configure(settings)
    stores = Stores(settings.storage_retry_seconds)
    holder = ModelHolder(settings, stores, expect_fork=arbiter_will_fork(settings))
    logs.describe_model(lambda: holder.model)  # log lines name the model served
    service = PredictionService(holder, Runners(settings),
                                LookupEnricher(holder, settings))
    router = Router(Drain(settings.shutdown_grace_seconds))
    admission = Admission(settings.requests_memory_mb << 20, settings.admission_wait_seconds,
                          settings.max_body_bytes)  # one memory bound for every request route
    prediction_routes(router, holder, service, settings, admission)
    oip_routes(router, holder, service, settings, admission)  # /v2: Open Inference Protocol
    router.prefix_errors["/v2"] = error_json  # e.g. 503 while shutting down, in v2's shape
    openai_routes(router, holder, service, settings, admission)  # /v1/embeddings, /v1/models
    docs = OpenApiDocs(holder, service, settings)
    docs_routes(router, docs)  # /openapi.json and /docs
    rt = Runtime(settings, stores, holder, service, router, admission)
    holder.while_building(read_ahead)  # a text model's tokenizer, parsed beside the session
    holder.on_ready(service.prepare)  # e.g. a text model's tokenizer, at cold start
    holder.on_ready(docs.prepare)  # the model's OpenAPI document, built once per model
    if is_pointer(settings.model_uri) and settings.model_poll_seconds > 0:
        from functions.events.pointer_follower import PointerFollower  # pointer users only

        holder.on_ready(PointerFollower(rt.events().rollout).start)
    if settings.event_routes:  # POST /events (functions/events/), imported only when used
        from functions.events.routes import event_routes

        event_routes(router, rt.events, settings.max_body_bytes, admission)
    holder.start()  # after the on_ready callbacks are in place; the rest above takes µs
    return rt


@lru_cache(maxsize=1)
def runtime() -> Runtime:
    """The process's wiring, from the environment; the first call starts the model load."""
    return build(Settings.from_env())
