"""A model load that storage fails transiently recovers by itself; a permanent failure is
not retried, and says so (issue 25, part 2). Storage is real (the GCS emulator, a local
HTTP model host); only the far end fails, through tests/far_end.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.config.settings import Settings
from functions.errors import ModelNotReady
from functions.loading import ModelHolder, Stores
from functions.loading.load_retry import retry_delay
from tests.conftest import DEMO_CARD, DEMO_MODEL
from tests.far_end import FarEnd, start_far_end
from tests.pubsub_topics import wait_until
from tests.servers import Served

ROW = {"instances": [[6.7, 3.0, 5.2, 2.3]]}


@pytest.fixture
def far_host(model_host: tuple[Any, str]) -> Iterator[tuple[FarEnd, Any]]:
    """(far end in front of the HTTP model host, the host): the demo model at /iris.onnx."""
    host, url = model_host
    far = start_far_end(url)
    yield far, host
    far.shutdown()


def holder_for(model_uri: str, tmp_path: Path) -> ModelHolder:
    settings = Settings(model_uri=model_uri, model_cache_dir=tmp_path / "cache",
                        load_retry_max_seconds=0.2, warmup=False)
    holder = ModelHolder(settings, Stores(retry_seconds=1, http_timeout=5))
    holder.start()
    return holder


def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    assert [retry_delay(n, 60, draw=0.999999) for n in (1, 2, 3, 4)] == pytest.approx(
        [1, 2, 4, 8], rel=1e-5)
    assert retry_delay(10, 60, draw=0.0) == 30 and retry_delay(500, 60, draw=0.5) == 45
    assert all(15 <= retry_delay(6, 30) <= 30 for _ in range(100))


def test_storage_5xx_at_load_is_retried_until_it_succeeds(far_host, tmp_path: Path) -> None:
    far, host = far_host
    far.fail(3)  # three attempts meet a 503 at their first request (the card)
    holder = holder_for(f"{far.url}/iris.onnx", tmp_path)
    wait_until(lambda: holder.model, "the model loaded", 30)
    assert len(far.answered(503)) == 3
    assert host.hits == {"/iris.card.json": 1, "/iris.onnx": 1}  # the fourth got through
    assert holder.readiness() == (True, "ready") and holder.retry_after() == {}


def test_a_permanent_failure_is_not_retried_and_says_so(far_host, tmp_path: Path) -> None:
    far, host = far_host
    root = tmp_path / "host"
    (root / "iris.onnx").write_bytes(DEMO_MODEL.read_bytes()[:-1] + b"\x00")  # corrupt
    holder = holder_for(f"{far.url}/iris.onnx", tmp_path)
    reason = wait_until(lambda: "sha256" in holder.readiness()[1] and holder.readiness()[1],
                        "a sha256 mismatch on readiness", 30)
    assert reason.startswith("model load failed: sha256 mismatch")
    assert reason.endswith("(permanent: not retried)")
    time.sleep(1.5)  # several backoff periods (LOAD_RETRY_MAX_SECONDS=0.2): no new attempt
    assert host.hits == {"/iris.card.json": 1, "/iris.onnx": 1}
    assert holder.retry_after() == {}
    with pytest.raises(ModelNotReady) as err:
        holder.require()
    assert err.value.headers == {} and "not retried" in err.value.message


def test_a_missing_model_is_permanent(far_host, tmp_path: Path) -> None:
    far, host = far_host
    holder = holder_for(f"{far.url}/nothing.onnx", tmp_path)
    reason = wait_until(lambda: "failed" in holder.readiness()[1] and holder.readiness()[1],
                        "a failed load on readiness", 30)
    assert "HTTP 404" in reason and reason.endswith("(permanent: not retried)")
    time.sleep(1.0)
    assert host.hits == {"/nothing.card.json": 1}


def workers(fn: Served) -> list[str]:
    """Process ids of the function's workers (the children of gunicorn's arbiter)."""
    return Path(f"/proc/{fn.proc.pid}/task/{fn.proc.pid}/children").read_text().split()


def test_the_function_becomes_ready_by_itself_after_storage_recovers(
        serve: Callable[..., Served], gcs_server: str, gcs_bucket: Any) -> None:
    """On the production server (gunicorn: the worker loads and retries, after the fork),
    the GCS emulator behind a far end that answers 503 until healed: /readyz and
    predictions answer 503 with the reason and a Retry-After meanwhile, then the same
    process serves, without a restart."""
    gcs_bucket.blob("m/model.onnx").upload_from_filename(str(DEMO_MODEL))
    gcs_bucket.blob("m/model.card.json").upload_from_filename(str(DEMO_CARD))
    far = start_far_end(gcs_server)
    far.fail(-1)
    try:
        fn = serve({"STORAGE_EMULATOR_HOST": far.url, "GOOGLE_CLOUD_PROJECT": "test-project",
                    "MODEL_URI": f"gs://{gcs_bucket.name}/m/model.onnx",
                    "STORAGE_RETRY_SECONDS": "0.5", "LOAD_RETRY_MAX_SECONDS": "2"},
                   wait="/healthz")
        ready = wait_until(lambda: [r for r in [fn.get("/readyz")] if "attempt 2" in r.text],
                           "a second attempt reported on /readyz", 30)[0]
        assert ready.status_code == 503 and "transient" in ready.json()["reason"]
        assert "503" in ready.json()["reason"]  # what storage answered
        assert 1 <= int(ready.headers["retry-after"]) <= 5
        resp = fn.post("/predict", json=ROW)
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "model_not_ready"
        assert "transient" in resp.json()["error"]["message"]
        assert 1 <= int(resp.headers["retry-after"]) <= 5
        failed = len(far.answered(503))
        before = workers(fn)
        assert len(before) == 1  # gunicorn's arbiter forked one worker, which serves
        far.heal()
        wait_until(lambda: fn.get("/readyz").status_code == 200, "ready after healing", 30)
        resp = fn.post("/predict", json=ROW)
        assert resp.status_code == 200 and resp.json()["predictions"][0]["label"] == "virginica"
        assert fn.proc.poll() is None and failed >= 2
        assert workers(fn) == before  # the same worker: no restart
        log = fn.log()
        assert "model ready in" in log and log.count("(transient, attempt 1;") == 1, log[-3000:]
    finally:
        far.shutdown()
