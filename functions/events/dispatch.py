"""One entry for every event source: route by event type, then acknowledge or redeliver.

``ack_or_redeliver`` is the single place that decides between acknowledging and
redelivery: Poison is logged and acknowledged; everything else is logged and raised so the
platform redelivers (see functions/events/failures.py). ``EventHandlers`` is the events
side assembled from what it needs (settings, the holder, the prediction service, the
object stores); every transport (CloudEvents, POST /events, Lambda, the batch job) calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from functions import metrics
from functions.events.envelopes import (
    PUBSUB_PUBLISHED,
    STORAGE_FINALIZED,
    pubsub_message,
    storage_object,
)
from functions.events.failures import Poison
from functions.events.messages import Messages
from functions.events.outcome import Outcome, log
from functions.events.rollout import Rollout
from functions.events.scoring import Scorer
from functions.events.uploads import Uploads
from functions.loading.holder import ModelHolder
from functions.loading.stores import Stores
from functions.service import PredictionService
from functions.settings import Settings


def ack_or_redeliver(work: Callable[[], Outcome], source: str, subject: str) -> Outcome:
    """Run ``work``; acknowledge poison, re-raise what deserves a retry."""
    try:
        outcome = work()
    except Poison as exc:
        outcome = Outcome("poison", str(exc))
    except Exception as exc:
        log.warning("%s %s: failed, the platform will redeliver: %s: %s",
                    source, subject, type(exc).__name__, exc)
        metrics.inc(f'events_total{{source="{source}",outcome="retry"}}')
        raise
    return outcome.report(source, subject)


@dataclass(frozen=True)
class EventHandlers:
    """What objects and messages do when they arrive."""

    uploads: Uploads
    messages: Messages
    rollout: Rollout

    @classmethod
    def build(cls, settings: Settings, holder: ModelHolder, service: PredictionService,
              stores: Stores) -> EventHandlers:
        scorer = Scorer(service, stores, settings.chunk_rows, settings.read_block_bytes)
        rollout = Rollout(settings, holder, stores)
        return cls(Uploads(settings, scorer, rollout), Messages(settings, scorer), rollout)

    def cloud_event(self, event: Any) -> Outcome:
        """A CloudEvent (or a legacy event / raw push body converted to one) from GCP."""
        etype = event["type"]

        def work() -> Outcome:
            if etype == STORAGE_FINALIZED:
                return self.uploads.handle(storage_object(event))
            if etype == PUBSUB_PUBLISHED:
                return self.messages.handle(pubsub_message(event))
            return Outcome("ignored", f"event type {etype} is not handled")

        source = "pubsub" if etype == PUBSUB_PUBLISHED else "storage"
        return ack_or_redeliver(work, source, str(event.get("subject") or event["id"]))
