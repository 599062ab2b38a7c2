"""A message published by the real google-cloud-pubsub client with its OpenTelemetry tracing
on carries the publisher's trace (the client writes it as a ``googclient_`` attribute); the
Pub/Sub emulator pushes it to on_pubsub_message on the production server, and the line the
function logs for that message names the publisher's trace."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pubsub_topics import PROJECT, wait_until
from tests.servers import free_port, start_function

pytestmark = pytest.mark.xdist_group("pubsub-emulator")  # one emulator under pytest-xdist


@pytest.fixture
def publisher_spans() -> Iterator[Any]:
    """The publisher's spans: the process's global tracer provider (the one the Pub/Sub
    client uses), recording into memory."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # set once per process
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def test_a_traced_publish_is_continued_in_the_functions_log(
        pubsub_emulator: str, publisher_spans: Any, tmp_path: Path) -> None:
    from google.cloud import pubsub_v1

    fn = start_function({"GOOGLE_CLOUD_PROJECT": PROJECT, "LOG_FORMAT": "json",
                         "MESSAGE_OUTPUT_URI": str(tmp_path / "results")}, tmp_path,
                        target="on_pubsub_message", wait=None)
    try:
        name = f"traced-{free_port()}"
        publisher = pubsub_v1.PublisherClient(publisher_options=pubsub_v1.types.PublisherOptions(
            enable_open_telemetry_tracing=True))
        subscriber = pubsub_v1.SubscriberClient()
        topic = publisher.topic_path(PROJECT, name)
        publisher.create_topic(name=topic)
        subscriber.create_subscription(request={
            "name": subscriber.subscription_path(PROJECT, f"{name}-push"), "topic": topic,
            "push_config": {"push_endpoint": f"{fn.url}/projects/{PROJECT}/topics/{name}"}})
        body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
        message_id = publisher.publish(topic, body).result(timeout=30)
        out = tmp_path / "results" / f"{message_id}.jsonl"
        wait_until(out.exists, str(out))
    finally:
        fn.stop()
    traces = {f"{s.context.trace_id:032x}" for s in publisher_spans.get_finished_spans()}
    lines = [json.loads(x) for x in fn.log().splitlines()
             if x.startswith("{") and f"{message_id}: scored" in x]
    [line] = lines
    trace_id = line["logging.googleapis.com/trace"].rsplit("/", 1)[-1]
    assert trace_id in traces, (line, traces)
    assert line["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/{trace_id}"
