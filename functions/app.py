"""Wiring: one Settings, one ModelHolder, one PredictionService, one Router per instance.

``instance()`` builds them on first call and starts the model load right away, so the
load overlaps whatever the platform does between importing ``main.py`` and the first
request. Adapters (HTTP, events, Lambda) all reach the core through this object.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from functions import logs
from functions.loader import ModelHolder, arbiter_will_fork
from functions.lookups import LookupEnricher
from functions.oip_routes import oip_routes
from functions.pointer import is_pointer
from functions.routes import Router, prediction_routes
from functions.service import PredictionService
from functions.settings import Settings, get_settings


@dataclass
class Instance:
    """Everything one serving instance owns."""

    settings: Settings
    holder: ModelHolder
    service: PredictionService
    router: Router


@lru_cache(maxsize=1)
def instance() -> Instance:
    """The instance's wiring; the first call starts the model load in the background."""
    settings = get_settings()
    logs.configure(settings)
    holder = ModelHolder(settings, expect_fork=arbiter_will_fork(settings))
    service = PredictionService(holder, settings, LookupEnricher(holder, settings))
    router = Router()
    prediction_routes(router, holder, service, settings)
    oip_routes(router, holder, service, settings)  # /v2: Open Inference Protocol
    inst = Instance(settings, holder, service, router)
    if is_pointer(settings.model_uri) and settings.model_poll_seconds > 0:
        from functions.events.follow import PointerFollower  # only pointer users pay for it

        follower = PointerFollower(inst)
        holder.on_ready(follower.start)
    if settings.event_routes:  # POST /events (functions/events/), imported only when used
        from functions.events.routes import event_routes

        event_routes(router, inst)
    holder.start()  # after the on_ready callbacks are in place; the rest above takes µs
    return inst
