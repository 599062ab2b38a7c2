"""One entry for every event source: route by event type, settle the outcome.

``settle`` is the single place that decides between acknowledging and redelivery: Poison
is logged and acknowledged; everything else is logged and raised so the platform
redelivers (see functions/events/failures.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from functions import metrics
from functions.events.envelopes import (
    PUBSUB_PUBLISHED,
    STORAGE_FINALIZED,
    pubsub_message,
    storage_object,
)
from functions.events.failures import Poison
from functions.events.messages import handle_message
from functions.events.outcome import Outcome, log
from functions.events.storage import handle_object

if TYPE_CHECKING:
    from functions.app import Instance


def settle(work: Callable[[], Outcome], source: str, subject: str) -> Outcome:
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


def handle_cloud_event(event: Any, inst: Instance) -> Outcome:
    """A CloudEvent (or a legacy event / raw push body converted to one) from GCP."""
    etype = event["type"]

    def work() -> Outcome:
        if etype == STORAGE_FINALIZED:
            return handle_object(storage_object(event), inst)
        if etype == PUBSUB_PUBLISHED:
            return handle_message(pubsub_message(event), inst)
        return Outcome("ignored", f"event type {etype} is not handled")

    source = "pubsub" if etype == PUBSUB_PUBLISHED else "storage"
    return settle(work, source, str(event.get("subject") or event["id"]))
