"""Event triggers: storage uploads, Pub/Sub / SQS messages, roll-outs, batch jobs.

Envelopes are unwrapped apart from their payloads, and every source ends in one of two
handlers that call the same core as HTTP:

    dispatch.py          EventHandlers (built from settings, holder, service, stores);
                         ``ack_or_redeliver``: keep and acknowledge poison, refuse what
                         no handler takes, raise to retry
    envelopes.py         CloudEvent / Pub/Sub message / storage notification -> ObjectRef
                         or Message (AWS envelopes: functions/aws/records.py)
    push.py              HTTP request -> CloudEvent (raw Pub/Sub push with or without data)
    poison.py            Delivery (what arrived) and PoisonKeeper (kept under errors/)
    object_names.py      output / errors / poison names: under their prefix, reproducible
    uploads.py           an object landed: roll out a model, score a data file, or ignore
    messages.py          a message landed: score its instances or the file it names
    rollout.py           download, verify, load, check (compat.py), warm up, swap, pointer
    pointer_follower.py  warm instances follow the LATEST pointer
    scoring.py           rows -> chunks -> PredictionService.predict -> outputs + errors
    formats.py           streamed readers for .jsonl / .csv / .npy
    routes.py            POST /events (EVENT_ROUTES=true) and the Pub/Sub push endpoint
    failures.py          Poison, MissingInput, Unhandled, Redeliver (hand it back: 503)
    outcome.py           what a handler did (log line, metrics, HTTP answer)

Entry points live in main.py (``on_storage_event``, ``on_pubsub_message``,
``lambda_handler``) and ``python -m functions.batch_job``. Nothing here imports the
wiring (``functions.runtime``): the parts are handed in.
"""

from functions.events.dispatch import EventHandlers, ack_or_redeliver
from functions.events.failures import Poison

__all__ = ["EventHandlers", "Poison", "ack_or_redeliver"]
