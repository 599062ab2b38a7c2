"""Serve an ONNX model from object storage as a serverless function.

One transport-neutral core, thin adapters around it. Where things live:

    runtime.py       wiring: one Settings, stores, holder, runners, service, router per
                     process (``runtime()``); the only module that knows every part
    service.py       the core: decoded items -> lookups -> dedupe -> runner -> ``Scored``
    dedupe.py        identical rows computed once
    errors.py        errors that carry their HTTP status; the per-item error body
    metrics.py       counters and summaries for GET /metrics
    logs.py          JSON log lines on the platforms, text locally
    batch_job.py     sharded offline scoring (``python -m functions.batch_job``)

    config/          Settings (read from the environment at start), the model card, the
                     msgspec records they are made of, the generated settings table
    codecs/          wire formats <-> arrays: request codecs (vertex rows and columnar, v2
                     JSON and binary), the input plans (tabular, tensors, text through the
                     card's tokenizer), response codecs (rows, columns, v2), the value rules
                     (values.py) and the JSON Schemas stated from them
    model/           OnnxModel, session options, the card checked against the graph, custom
                     ops; the runner (how a model is called), its cost curve, the batcher
                     (merges concurrent requests), isolation of items the model refuses
    loading/         the holder (lifecycle, retries, fork safety), artifacts (card, download,
                     sha256, cache lock, sidecars such as a tokenizer), the LATEST pointer,
                     object stores (gs, s3, https, file) with create-only writes
    http/            router, request bodies, responses and the one error mapper, routes,
                     shutdown drain, the OpenAPI document and /docs
    oip/             Open Inference Protocol routes (/v2); their wire format is codecs.v2
    openai/          OpenAI-compatible embeddings routes (/v1/embeddings, /v1/models); their
                     wire format is codecs.openai_embeddings
    lookups/         external feature lookups (enricher, HTTP client, lru cache)
    events/          storage uploads, Pub/Sub / SQS messages, roll-out, file scoring
    aws/             the AWS Lambda adapter (HTTP through the Router, S3 and SQS records)
    telemetry/       the trace of a request or event on its log lines (always on);
                     OpenTelemetry spans only when OTEL_TRACES_EXPORTER asks for them

A request: route (transport: read the body, choose the codecs) -> request codec (bytes ->
one array per graph input, checked by the value rules) -> ``PredictionService.predict`` ->
response codec (the format the client asked for). Adding a protocol means a codec and its
routes, nothing in the core.

Dependencies point inwards: adapters (http, oip, openai, events, aws) use the core and are handed
what they use; the core never imports an adapter; nothing imports ``runtime`` but the
entry points (main.py, batch_job.py).
"""

__all__ = ["runtime"]
