"""The one Settings object, read from the environment once per process.

No other module reads ``os.environ``: they receive a Settings (or the value they need).
Each field's docstring is the documentation shown in the README's settings table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from functions.config.card import LookupSpec, sidecar_card
from functions.config.cpus import default_threads
from functions.config.structs import read_env

BUNDLED_MODEL = Path(__file__).resolve().parents[2] / "models" / "iris.onnx"


class Settings(msgspec.Struct, kw_only=True):
    """Runtime configuration; every field maps to an upper-case environment variable.

    ``Settings.from_env()`` reads them (msgspec converts and validates the strings);
    ``Settings(field=value)`` builds one directly, for tests and tools (typed values, not
    validated again).
    """

    # Field docstrings are read from the source by functions.config.settings_doc (the README
    # table), never at run time.

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``environ`` (default: the process environment), by upper-case name.

        Structured fields (lists) are read as JSON, booleans as true/false, 1/0, yes/no,
        on/off; every value is validated, so a bad value fails at start with EnvError (a
        ValueError) naming the variable and why (``BATCH_MAX_ROWS=0: Expected `int` >= 1``).
        Unknown variables are ignored.
        """
        env = os.environ if environ is None else environ
        settings = read_env(cls, env)
        if "MODEL_URI" not in env and settings.aip_storage_uri:  # Vertex AI's artifacts
            settings.model_uri = settings.aip_storage_uri.rstrip("/") + "/"
        return settings

    model_uri: str = str(BUNDLED_MODEL)
    """Where the ONNX model lives: gs://bucket/key, s3://bucket/key, https://..., or a path.
    A folder (ending in `/`) serves the one `.onnx` object directly in it. Unset, with
    AIP_STORAGE_URI set: that folder."""

    model_card_uri: str | None = None
    """The model card JSON; default: the model URI with `.onnx` replaced by `.card.json`."""

    model_cache_dir: Path = Path("/tmp/model-cache")
    """Local directory the model is downloaded to (on Cloud Functions /tmp is in memory)."""

    require_sha256: bool = True
    """Refuse a model whose card has no sha256 to verify the download against."""

    intra_op_threads: int = msgspec.field(default_factory=default_threads)
    """onnxruntime intra-op threads; default: usable CPUs (affinity and cgroup quota), at
    most 4."""

    execution_providers: Literal["cpu", "gpu", "auto"] = "cpu"
    """`gpu` requires CUDA/TensorRT (refuses readiness without), `auto` uses them if present."""

    trt_cache_dir: Path = Path("/tmp/trt-cache")
    """Where TensorRT engines are cached so a second start does not rebuild them."""

    optimized_model: bool = False
    """Skip graph optimisation at load for any model (a card whose last step is
    `model_export optimize` turns it off by itself)."""

    warmup: bool = True
    """Run one inference before readiness turns 200."""

    model_poll_seconds: Annotated[float, Meta(ge=0)] = 60.0
    """When MODEL_URI is a `.../LATEST` pointer: re-read it this often and move warm
    instances to the version it names (0: only at cold start)."""

    fork_wait_seconds: Annotated[float, Meta(ge=0)] = 5.0
    """Under functions-framework's production server (gunicorn), the arbiter leaves the
    session to the worker it forks; if no fork comes within this time it loads the model
    itself."""

    debug: str | None = None
    """functions-framework's own DEBUG switch (its development server, no fork); read."""

    load_wait_seconds: float = 30.0
    """How long a request that arrives during the model load waits before a 503."""

    load_retry_max_seconds: Annotated[float, Meta(gt=0)] = 60.0
    """Longest wait between two tries to load the model after a transient storage or
    network failure (the wait doubles from 1 s up to this, with jitter; answers meanwhile
    are 503 with a Retry-After). Permanent failures are not retried."""

    shutdown_grace_seconds: Annotated[float, Meta(ge=0)] = 8.0
    """After SIGTERM, how long requests in flight may take to finish (readiness is 503
    and new requests are refused from the signal on); then the process exits. Keep it
    under the platform's kill delay (Cloud Run and Cloud Functions: 10 s)."""

    max_body_bytes: int = 32 * 1024 * 1024
    """Request bodies above this are refused with 413 (Cloud Functions caps HTTP at 32 MiB)."""

    max_instances: int = 1_000
    """Most instances taken by POST /predict, and inputs by /v1/embeddings (all-or-nothing)."""

    max_batch_instances: int = 20_000
    """Most instances accepted by POST /batch-predict (per-item errors)."""

    inline_budget_ms: float = 2.0
    """Model calls expected to take less than this run on the event loop, longer ones in a
    worker thread (the expectation is measured per model as it serves)."""

    batching: Literal["auto", "on", "off"] = "auto"
    """Merge concurrent requests into one model call: `auto` where the model's measured cost
    curve says it pays, `on` always, `off` never (always off on Lambda)."""

    batch_max_rows: Annotated[int, Meta(ge=1)] = 256
    """Most rows in one merged model call."""

    model_call_memory_mb: Annotated[int, Meta(ge=16)] = 128
    """Memory one model call may use, in MiB; a request over it is cut into several calls
    (its items keep their order). A text model's call holds at most this / 64 KiB padded
    tokens, any other's this / 64 of input bytes. The default fits the deploy default of
    1 GiB (FUNCTION_MEMORY) with the model, the server and the requests in flight."""

    calls_at_once: Annotated[int, Meta(ge=1, le=2)] = msgspec.field(
        default_factory=lambda: min(2, default_threads()))
    """The cuts of merged calls of a text model that may run at once, each on a thread of
    its own (1: one after another); together they stay within MODEL_CALL_MEMORY_MB, and a
    thread with no cut of its merge left starts the next merge's. Default: 2 where 2 CPUs
    are usable (two small calls at once beat one call on two threads)."""

    pair_session_mb: Annotated[int, Meta(ge=0)] = 128
    """With CALLS_AT_ONCE=2 on CPU, a text model file up to this size (MiB) gets a second
    session whose calls use one intra-op thread each: the two cuts at once run on it, one
    per CPU, and their cost sets where merges are cut. It holds the weights a second time;
    a larger model's cuts share its one session. 0: never."""

    requests_memory_mb: Annotated[int, Meta(ge=16)] = 320
    """Memory the requests in flight on every prediction route (/predict, /batch-predict,
    /v1/embeddings, /v2 infer) and event push (/events, on_pubsub_message) may hold
    together, in MiB (their bodies, decoded inputs and answers; model calls are
    MODEL_CALL_MEMORY_MB's). A request that would go
    over waits, its body unread, until earlier ones are answered. The default fits the
    deploy default of 1 GiB (FUNCTION_MEMORY) with the model, its calls and the server;
    scale it with the instance's memory (docs/benchmarks.md, Memory per model call)."""

    admission_wait_seconds: Annotated[float, Meta(gt=0)] = 30.0
    """How long a request may wait for REQUESTS_MEMORY_MB before it is answered 503
    `overloaded` with a Retry-After; keep it under the platform's request timeout."""

    batch_max_wait_ms: Annotated[float, Meta(ge=0)] = 0.0
    """Under load, how long a small queue may wait for more requests before the next merged
    call (bounded by the model's fixed cost per call); 0 merges only what queued while the
    model was busy, never adding a wait."""

    log_level: str = "INFO"
    """Python logging level for the package's loggers."""

    log_format: Literal["auto", "json", "text"] = "auto"
    """`json`: one JSON object per line with `severity` (Cloud Logging, CloudWatch); `auto`
    picks it on Cloud Run / Cloud Functions (K_SERVICE) and Lambda, `text` elsewhere."""

    google_cloud_project: str | None = None
    """The project in log lines' trace names; unset on Cloud Run / Functions / Vertex AI:
    read once from the metadata server."""

    gce_metadata_host: str = "metadata.google.internal"
    """The metadata server asked for the project ID."""

    otel_traces_exporter: Literal["none", "otlp", "console"] = "none"
    """OpenTelemetry tracing: `otlp` exports spans over OTLP/HTTP (the SDK's OTEL_EXPORTER_OTLP_*
    variables, OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, ... apply), `console` prints them;
    `none` (the default here, unlike the SDK's) imports no SDK. See docs/tracing.md."""

    otel_sdk_disabled: bool = False
    """OpenTelemetry's switch: true turns tracing off whatever OTEL_TRACES_EXPORTER says."""

    k_service: str | None = None
    """Set by Cloud Run and Cloud Functions gen2 (the service name); read, not set."""

    aws_lambda_function_name: str | None = None
    """Set by AWS Lambda; read, not set."""

    aip_predict_route: str | None = None
    """Set by Vertex AI for a custom container: the path it posts `{"instances": [...]}`
    to; served like /predict."""

    aip_health_route: str | None = None
    """Set by Vertex AI: the path of its health checks; answered like /readyz."""

    aip_storage_uri: str | None = None
    """Set by Vertex AI for a model with artifacts: the gs:// folder it copied them to.
    Without MODEL_URI, the model served is the one `.onnx` file in it (its card beside it)."""

    openai_model_aliases: list[str] | None = None
    """Names besides the card's that POST /v1/embeddings takes as `model` (JSON list)."""

    openai_token_ids: bool = False
    """POST /v1/embeddings takes token ids of the model's own tokenizer as `input`; off, a
    400 says to send text (another tokenizer's ids would be misread: docs/openai.md)."""

    # -- events: storage / Pub/Sub / SQS triggers, batch job (functions/events/) ------------
    models_prefix: str = "models/"
    """Object prefix watched for model uploads (`NAME.onnx` + `NAME.card.json`): roll-out."""

    inputs_prefix: str = "inputs/"
    """Object prefix watched for data files (.jsonl, .csv, .npy) to score."""

    outputs_prefix: str = "outputs/"
    """Prefix (same bucket as the input) for predictions: `<input>.<generation>.jsonl`."""

    errors_prefix: str = "errors/"
    """Prefix (same bucket as the input) for invalid rows with their line numbers."""

    watch_bucket: str | None = None
    """Act only on objects in this bucket (events from others are acknowledged, ignored)."""

    message_output_uri: str | None = None
    """gs:// or s3:// prefix for Pub/Sub / SQS message results, one object per message id."""

    poison_uri: str | None = None
    """gs:// or s3:// prefix where poison events (undecodable, schema-invalid, unhandled) are
    kept, one JSON object each (`poison/<source>/<id>.json`); default: ERRORS_PREFIX in the
    bucket the event names, else in MESSAGE_OUTPUT_URI's bucket."""

    sqs_poison_to_dlq: bool = False
    """SQS: report poison records in `batchItemFailures` (the queue's redrive policy moves
    them to its dead-letter queue) instead of keeping them under the errors location."""

    chunk_rows: Annotated[int, Meta(ge=1)] = 1_000
    """Rows scored per model call when scoring a file (bounds memory with the block size)."""

    read_block_bytes: Annotated[int, Meta(ge=1024)] = 1 << 20
    """Bytes fetched per read when streaming an input file."""

    storage_retry_seconds: Annotated[float, Meta(gt=0)] = 30.0
    """How long a failing GCS call is retried: event handlers then hand the event back, a
    model load tries again later (LOAD_RETRY_MAX_SECONDS)."""

    event_routes: bool = False
    """Mount POST /events in the HTTP app (CloudEvents, legacy events, Pub/Sub push)."""

    batch_input_uri: str | None = None
    """`python -m functions.batch_job`: the gs:// or s3:// prefix whose files it scores."""

    cloud_run_task_index: Annotated[int, Meta(ge=0)] = 0
    """This task's shard (set by Cloud Run Jobs)."""

    cloud_run_task_count: Annotated[int, Meta(ge=1)] = 1
    """Number of shards (set by Cloud Run Jobs)."""

    lookup_specs: list[LookupSpec] | None = None
    """JSON list of feature lookups (the card's `lookups` shape); when set, replaces the card's."""

    lookup_concurrency: Annotated[int, Meta(ge=1)] = 100
    """Most feature-service calls in flight at once per process (one thread and socket each)."""

    lookup_connect_timeout: float = 1.0
    """Seconds to open a connection to the feature service (per attempt)."""

    lookup_read_timeout: float = 2.0
    """Seconds to wait for the feature service's answer (per attempt; not retried)."""

    lookup_deadline_seconds: float = 5.0
    """Budget for the whole lookup step of one request; keys still unanswered then fail."""

    lookup_retries: Annotated[int, Meta(ge=0)] = 2
    """Extra attempts after a connection error or a 5xx/429 answer (never after a 4xx)."""

    lookup_backoff_seconds: float = 0.05
    """First retry delay, doubled for each further retry (a larger Retry-After wins)."""

    lookup_cache_size: Annotated[int, Meta(ge=1)] = 100_000
    """Most looked-up keys kept in memory (least recently used evicted first)."""

    lookup_cache_ttl_seconds: float = 0.0
    """Longest a cached lookup is reused, in seconds; 0 keeps entries until evicted."""

    lookup_trust_env: bool = False
    """Let lookups honour HTTP(S)_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE and ~/.netrc."""

    def card_uri(self) -> str:
        """The model card URI: explicit, or the sidecar next to the model."""
        return self.model_card_uri or sidecar_card(self.model_uri)

