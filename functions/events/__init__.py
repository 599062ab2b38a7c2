"""Event triggers: storage uploads, Pub/Sub / SQS messages, roll-outs, batch jobs.

Envelopes are unwrapped apart from their payloads, and every source ends in one of two
handlers that call the same core as HTTP:

    dispatch.py          EventHandlers (built from settings, holder, service, stores);
                         ``ack_or_redeliver``: acknowledge poison, raise to retry
    envelopes.py         CloudEvent / S3 record / SQS record -> ObjectRef or Message
    uploads.py           an object landed: roll out a model, score a data file, or ignore
    messages.py          a message landed: score its instances or the file it names
    rollout.py           download, verify, load, check (compat.py), warm up, swap, pointer
    pointer_follower.py  warm instances follow the LATEST pointer
    scoring.py           rows -> chunks -> PredictionService.predict -> outputs + errors
    formats.py           streamed readers for .jsonl / .csv / .npy
    routes.py            POST /events in the HTTP app (EVENT_ROUTES=true)
    failures.py          Poison, and which exceptions are transient
    outcome.py           what a handler did (log line, metrics, HTTP answer)

Entry points live in main.py (``on_storage_event``, ``on_pubsub_message``,
``lambda_handler``) and ``python -m functions.batch_job``. Nothing here imports the
wiring (``functions.runtime``): the parts are handed in.
"""

from functions.events.dispatch import EventHandlers, ack_or_redeliver
from functions.events.failures import Poison

__all__ = ["EventHandlers", "Poison", "ack_or_redeliver"]
