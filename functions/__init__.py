"""Serve an ONNX model from object storage as a serverless function.

One transport-neutral core, thin adapters around it. Where things live:

    runtime.py       wiring: one Settings, stores, holder, runners, service, router per
                     process (``runtime()``); the only module that knows every part
    settings.py      the one Settings object, read from the environment at start
    settings_doc.py  the README's settings table, generated from Settings
    card.py          the model card (the sidecar JSON every model travels with)
    structs.py       msgspec records that keep unknown keys, builtins in and out, the
                     environment read into a struct (errors name the variable)
    errors.py        errors that carry their HTTP status; the per-item error body
    metrics.py       counters and summaries for GET /metrics
    logs.py          JSON log lines on the platforms, text locally
    rows.py          instances (or columnar inputs) -> one array per graph input, any
                     signature: picks the plan (tabular, tensors, text) per model
    tabular.py       feature rows -> one validated matrix; the NaN and bool policy
    tensor_rows.py   per-instance tensors by input name, checked against the graph
    text.py          text -> token inputs with the card's tokenizer; pooling
    dedupe.py        identical rows computed once
    predictions.py   output arrays -> one prediction object per row, per task
    service.py       the core: decode -> lookups -> dedupe -> runner -> predictions
    one_row.py       one clean row of a plain tabular model, without the batch machinery
                     (the same checks, call, counters and answer; anything else declines)
    batch_job.py     sharded offline scoring (``python -m functions.batch_job``)

    model/           OnnxModel, session options, the card checked against the graph, custom
                     ops; the runner (how a model is called), its cost curve, the batcher
                     (merges concurrent requests), isolation of items the model refuses
    loading/         the holder (lifecycle, fork safety), artifacts (card, download,
                     sha256, cache lock, sidecars such as a tokenizer), the LATEST pointer,
                     object stores (gs, s3, https, file)
    http/            router, request bodies, responses and the one error mapper, routes,
                     shutdown drain, the OpenAPI document and /docs
    oip/             Open Inference Protocol adapter (/v2 routes, payloads, tensors)
    lookups/         external feature lookups (enricher, HTTP client, lru cache)
    events/          storage uploads, Pub/Sub / SQS messages, roll-out, file scoring
    aws/             the AWS Lambda adapter (HTTP through the Router, S3 and SQS records)

Dependencies point inwards: adapters (http, oip, events, aws) use the core and are handed
what they use; the core never imports an adapter; nothing imports ``runtime`` but the
entry points (main.py, batch_job.py).
"""

__all__ = ["runtime"]
