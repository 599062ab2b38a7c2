"""One entry for every event source: route by event type, then acknowledge or redeliver.

``ack_or_redeliver`` is the single place that decides between acknowledging and
redelivery: Poison is kept (``keep``: functions/events/poison.py) and acknowledged;
Unhandled is refused; everything else is logged and raised so the platform redelivers (see
functions/events/failures.py). ``EventHandlers`` is the events side assembled from what it
needs (settings, the holder, the prediction service, the object stores); every transport
(CloudEvents, POST /events, Pub/Sub push, Lambda, the batch job) calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from functions import metrics
from functions.config.settings import Settings
from functions.events.envelopes import (
    PUBSUB_PUBLISHED,
    STORAGE_FINALIZED,
    STORAGE_TYPES,
    Message,
    gcs_notification,
    pubsub_delivery,
    pubsub_message,
    storage_delivery,
    storage_object,
)
from functions.events.failures import Poison, Redeliver, Unhandled
from functions.events.messages import Messages
from functions.events.outcome import Outcome, log
from functions.events.poison import Delivery, PoisonKeeper
from functions.events.rollout import Rollout
from functions.events.scoring import Scorer
from functions.events.uploads import Uploads
from functions.loading.holder import ModelHolder
from functions.loading.stores import Stores
from functions.service import PredictionService
from functions.telemetry import spans
from functions.telemetry.context import TRACEPARENT, continued, message_header

Keep = Callable[[Poison], str]


def ack_or_redeliver(work: Callable[[], Outcome], source: str, subject: str,
                     keep: Keep | None = None) -> Outcome:
    """Run ``work``; keep and acknowledge poison, refuse what no handler takes, re-raise
    what deserves a retry. ``keep(exc)`` returns where the poison went; when it raises
    (nowhere to keep it, storage down) the event is handed back instead: Redeliver, the
    keeper's error as its cause."""
    try:
        outcome = work()
    except Poison as exc:
        outcome = Outcome(exc.outcome, str(exc))
        if keep is not None:
            try:
                kept = keep(exc)
            except Exception as keep_exc:
                _redeliver(source, subject, keep_exc, f"{exc.outcome} ({exc}) not kept: ")
                if isinstance(keep_exc, Redeliver):
                    raise
                raise Redeliver(f"{exc.outcome} not kept ({type(keep_exc).__name__}: "
                                f"{keep_exc}): {exc}") from keep_exc
            outcome = Outcome(exc.outcome, f"{exc}; kept in {kept}", {"kept": kept})
    except Unhandled as exc:
        log.error("%s %s: refused, for the platform to dead-letter: %s", source, subject, exc)
        metrics.inc(f'events_total{{source="{source}",outcome="refused"}}')
        raise
    except Exception as exc:
        _redeliver(source, subject, exc)
        raise
    return outcome.report(source, subject)


def _redeliver(source: str, subject: str, exc: BaseException, why: str = "") -> None:
    log.warning("%s %s: %sfailed, the platform will redeliver: %s: %s",
                source, subject, why, type(exc).__name__, exc)
    metrics.inc(f'events_total{{source="{source}",outcome="retry"}}')


@dataclass(frozen=True)
class EventHandlers:
    """What objects and messages do when they arrive."""

    settings: Settings
    uploads: Uploads
    messages: Messages
    rollout: Rollout
    poison: PoisonKeeper

    @classmethod
    def build(cls, settings: Settings, holder: ModelHolder, service: PredictionService,
              stores: Stores) -> EventHandlers:
        scorer = Scorer(service, stores, settings.chunk_rows, settings.read_block_bytes)
        rollout = Rollout(settings, holder, stores)
        return cls(settings, Uploads(settings, scorer, rollout), Messages(settings, scorer),
                   rollout, PoisonKeeper(settings, stores))

    def run(self, delivery: Delivery, work: Callable[[], Outcome],
            keep: Keep | None = None) -> Outcome:
        """``ack_or_redeliver`` for one delivery; its poison is kept under the errors
        location unless ``keep`` says otherwise."""
        with spans.event(f"event {delivery.source}", message_header(delivery.attributes),
                         **{"messaging.message.id": delivery.id}):
            return ack_or_redeliver(work, delivery.source, delivery.subject or delivery.id,
                                    keep or (lambda exc: self.poison.keep(delivery, str(exc))))

    def message(self, msg: Message) -> Outcome:
        """A message from any topic or queue: a Cloud Storage notification goes down the
        storage path, anything else asks Messages for predictions."""
        note = gcs_notification(msg.attributes)
        if note is None:
            return self.messages.handle(msg)
        event_type, ref = note
        if event_type != "OBJECT_FINALIZE":
            return Outcome("ignored", f"Cloud Storage notification {event_type}")
        return self.uploads.handle(ref)

    def cloud_event(self, event: Any) -> Outcome:
        """A CloudEvent (or a legacy event / raw push body converted to one) from GCP; its
        ``traceparent`` extension is the trace of what it does (a message's own wins)."""
        with continued((TRACEPARENT, event.get("traceparent"))):
            return self._cloud_event(event)

    def _cloud_event(self, event: Any) -> Outcome:
        etype = event["type"]
        if etype == PUBSUB_PUBLISHED:
            return self.run(pubsub_delivery(event), lambda: self.message(pubsub_message(event)))
        if etype == STORAGE_FINALIZED:
            return self.run(storage_delivery(event),
                            lambda: self.uploads.handle(storage_object(event)))
        if etype in STORAGE_TYPES:
            return ack_or_redeliver(lambda: Outcome("ignored", f"event type {etype}"),
                                    "storage", str(event.get("subject") or event["id"]))

        def refuse() -> Outcome:
            raise Unhandled(f"event type {etype!r} from {event.get('source')!r} is not handled "
                            f"(this function takes {STORAGE_FINALIZED} and {PUBSUB_PUBLISHED})")

        return ack_or_redeliver(refuse, "events", str(event["id"]))

