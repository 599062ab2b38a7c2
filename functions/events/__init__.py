"""Event triggers: storage uploads, Pub/Sub / SQS messages, AWS Lambda, batch jobs.

Envelopes are unwrapped apart from their payloads, and every source ends in one of two
handlers that call the same core as HTTP:

    envelopes.py       CloudEvent / S3 record / SQS record -> ObjectRef or Message
    dispatch.py        route by event type; ``settle``: acknowledge poison, raise to retry
    storage.py         an object landed: roll out a model, score a data file, or ignore
    messages.py        a message landed: score its instances or the file it names
    rollout.py         download, verify, load, check (compat.py), warm up, swap, pointer
    scoring.py         rows -> chunks -> PredictionService.predict -> outputs + errors
    formats.py         streamed readers for .jsonl / .csv / .npy
    objects.py         bounded-memory reads and commit-on-success writes (gs://, s3://)
    routes.py          POST /events in the HTTP app (EVENT_ROUTES=true)
    lambda_adapter.py  ``lambda_handler``: Mangum for HTTP, S3 and SQS records
    failures.py        Poison, and which exceptions are transient

Entry points live in main.py (``on_storage_event``, ``on_pubsub_message``,
``lambda_handler``) and ``python -m functions.batch_job``.
"""
