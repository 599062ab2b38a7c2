"""A stop while a storage event is being scored (POST /events under the production
server): after SIGTERM the job either completes within the grace or leaves nothing; after
SIGKILL (the platform's, when the grace is over: it kills every process of the instance,
arbiter and workers) nothing; never a partial output. Outputs are read only once every
process of the function is gone. The redelivered event then writes the complete result
exactly once.

Over a socket: the subject is the served process and its signals."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.eventfiles import post_binary, storage_cloud_event
from tests.servers import group_members, start_function, wait_group_gone

ROWS = 120_000
HANG_BOUND = 60.0


def _rows_scored(url: str) -> float:
    text = requests.get(url + "/metrics", timeout=5).text
    line = next((ln for ln in text.splitlines() if ln.startswith("predict_rows_total ")), None)
    return float(line.split()[1]) if line else 0.0


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL],
                         ids=["sigterm", "sigkill"])
def test_a_stop_mid_scoring_leaves_no_partial_output(stop_signal: signal.Signals, tmp_path: Path,
                                                     gcs_env: dict[str, str], gcs_bucket) -> None:
    body = "\n".join(json.dumps([5.0 + (i % 30) / 10, 3.0, 1.5, 0.2]) for i in range(ROWS))
    name = "inputs/big.jsonl"
    blob = gcs_bucket.blob(name)
    blob.upload_from_string(body.encode() + b"\n")
    event = storage_cloud_event(gcs_bucket.name, name, blob.generation)
    env = {**gcs_env, "EVENT_ROUTES": "true", "CHUNK_ROWS": "20", "SHUTDOWN_GRACE_SECONDS": "1"}
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    fn = start_function(env, tmp_path / "first")
    try:
        threading.Thread(target=lambda: _post_quietly(fn.url, event), daemon=True).start()
        deadline = time.monotonic() + HANG_BOUND
        while _rows_scored(fn.url) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _rows_scored(fn.url) > 0, fn.log()  # scoring is under way
        assert len(group_members(fn.proc.pid)) >= 2  # the arbiter and its worker
        if stop_signal == signal.SIGKILL:  # the platform kills the whole instance
            os.killpg(fn.proc.pid, signal.SIGKILL)
        else:  # SIGTERM to the arbiter, which passes it on to its workers
            fn.proc.send_signal(stop_signal)
        fn.proc.wait(HANG_BOUND)
        wait_group_gone(fn.proc.pid, HANG_BOUND)  # no worker still writing
    finally:
        fn.stop()
    outputs = [b for b in gcs_bucket.client.list_blobs(gcs_bucket.name, prefix="outputs/")]
    for out in outputs:  # only ever a complete result, never a prefix of one
        assert len(out.download_as_bytes().splitlines()) == ROWS, fn.log()
    if stop_signal == signal.SIGKILL:  # killed mid-job: the upload was never committed
        assert outputs == [], [o.name for o in outputs]

    again = start_function({**env, "SHUTDOWN_GRACE_SECONDS": "8"}, tmp_path / "second")
    try:
        resp = post_binary(again.url + "/events", event)
        assert resp.status_code == 200, again.log()
        assert resp.json()["outcome"] in ("scored", "skipped")
    finally:
        again.stop()
    outputs = [b for b in gcs_bucket.client.list_blobs(gcs_bucket.name, prefix="outputs/")]
    assert len(outputs) == 1
    assert len(outputs[0].download_as_bytes().splitlines()) == ROWS


def _post_quietly(url: str, event: dict) -> None:
    try:
        post_binary(url + "/events", event)
    except requests.RequestException:
        pass  # the server went away mid-request: that is the point of the test
