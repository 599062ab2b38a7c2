"""Events this deployment cannot take now are handed back with 503 and a Retry-After, not
through the crash path's 500 (issue 25; docs/events.md): poison with nowhere to keep it,
poison whose record cannot be written, a message with no MESSAGE_OUTPUT_URI. Pub/Sub push
bodies posted to ``on_pubsub_message`` in process (tests/inprocess.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.eventfiles import post_json, pubsub_push
from tests.inprocess import start_in_process


def _handed_back(resp, *words: str) -> None:  # noqa: ANN001 - a TestClient response
    assert resp.status_code == 503, resp.text
    assert resp.json()["outcome"] == "retry" and int(resp.headers["retry-after"]) > 0
    for word in words:
        assert word in resp.json()["detail"], resp.text


@pytest.mark.parametrize("env", [{}, {"MESSAGE_OUTPUT_URI": ""}])
def test_poison_with_nowhere_to_keep_it_answers_503(env: dict[str, str], tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    fn = start_in_process({"GOOGLE_CLOUD_PROJECT": "test-project", **env}, tmp_path,
                          target="on_pubsub_message", wait=None)
    try:
        resp = post_json(fn, pubsub_push(b"{not json", "poison-nowhere-1"))
        _handed_back(resp, "no errors location", "POISON_URI", "payload is not JSON")
        assert "internal error" not in resp.text and "will redeliver" in caplog.text
    finally:
        fn.stop()


def test_poison_whose_record_cannot_be_written_answers_503(gcs_env: dict[str, str],
                                                           tmp_path: Path) -> None:
    fn = start_in_process({**gcs_env, "POISON_URI": "gs://no-such-bucket-anywhere/poison"},
                          tmp_path, target="on_pubsub_message", wait=None)
    try:
        resp = post_json(fn, pubsub_push(b"{not json", "poison-unwritable-1"))
        _handed_back(resp, "poison not kept", "NotFound", "payload is not JSON")
    finally:
        fn.stop()


def test_a_message_without_message_output_uri_answers_503(tmp_path: Path) -> None:
    fn = start_in_process({}, tmp_path, target="on_pubsub_message", wait=None)
    try:
        data = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
        _handed_back(post_json(fn, pubsub_push(data, "no-output-1")), "MESSAGE_OUTPUT_URI")
    finally:
        fn.stop()
