"""Cold start: the model comes from gs://, s3://, https:// or a path, verified and loaded once.

Over a socket: each test is a cold start, a process's first load with the environment it
started with (storage endpoints, CA bundle, load wait); in process an app's environment is
applied around its requests only, while the load runs on a thread of its own."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import requests

from functions.loading.early_fetch import HOLD_SECONDS
from tests.conftest import DEMO_CARD, DEMO_MODEL
from tests.servers import Served, self_signed_cert, start_file_server

ROW = {"instances": [[6.7, 3.0, 5.2, 2.3]]}


def predicted(fn: Served) -> dict:
    resp = fn.post("/predict", json=ROW)
    assert resp.status_code == 200, resp.text
    return resp.json()["predictions"][0]


def test_loads_from_gcs_emulator(serve, gcs_env, gcs_bucket, demo_function: Served) -> None:
    gcs_bucket.blob("models/iris/1/model.onnx").upload_from_filename(str(DEMO_MODEL))
    gcs_bucket.blob("models/iris/1/model.card.json").upload_from_filename(str(DEMO_CARD))
    fn = serve({**gcs_env, "MODEL_URI": f"gs://{gcs_bucket.name}/models/iris/1/model.onnx"})
    assert predicted(fn) == predicted(demo_function)
    assert fn.get("/model").json()["sha256"] == json.loads(DEMO_CARD.read_text())["sha256"]


def test_loads_from_s3_via_moto(serve, s3_env) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(DEMO_MODEL), "models", "iris/1/model.onnx")
    s3.upload_file(str(DEMO_CARD), "models", "iris/1/model.card.json")
    fn = serve({**s3_env, "MODEL_URI": "s3://models/iris/1/model.onnx"})
    assert predicted(fn)["label"] == "virginica"


def test_loads_over_http_and_downloads_once_under_concurrent_first_requests(
        serve, model_host) -> None:
    server, url = model_host
    # the load is still running when the requests arrive: the fetch ahead (its card and
    # model, each delayed) outlasts what the fork waits for it, so the worker, forked,
    # reads the card itself and then waits for that download
    server.delay = HOLD_SECONDS / 2 + 0.5
    fn = serve({"MODEL_URI": f"{url}/iris.onnx", "LOAD_WAIT_SECONDS": "30"}, wait="/healthz")
    assert fn.get("/readyz").status_code == 503  # still loading: not ready yet
    results: list[int] = []

    def call() -> None:
        results.append(requests.post(fn.url + "/predict", json=ROW, timeout=60).status_code)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 16  # every early request waited for the one load
    assert server.hits["/iris.onnx"] == 1
    assert fn.get("/readyz").status_code == 200


def test_loads_over_https_with_certificate_verification(serve, tmp_path: Path) -> None:
    root = tmp_path / "tls"
    root.mkdir()
    for src in (DEMO_MODEL, DEMO_CARD):
        (root / src.name).write_bytes(src.read_bytes())
    cert, key = self_signed_cert(tmp_path)
    server, url = start_file_server(root, tls=(cert, key))
    try:
        assert url.startswith("https://")
        fn = serve({"MODEL_URI": f"{url}/iris.onnx", "REQUESTS_CA_BUNDLE": str(cert)})
        assert predicted(fn)["label"] == "virginica"
        # without trusting that certificate the download is refused, and readiness says why
        untrusted = serve({"MODEL_URI": f"{url}/iris.onnx", "REQUESTS_CA_BUNDLE": ""},
                          wait="/healthz")
        resp = untrusted.post("/predict", json=ROW)
        assert resp.status_code == 503 and "SSL" in resp.json()["error"]["message"]
    finally:
        server.shutdown()


def test_requests_during_a_slow_load_wait_a_bounded_time(serve, model_host) -> None:
    server, url = model_host
    server.delay = 4.0
    fn = serve({"MODEL_URI": f"{url}/iris.onnx", "LOAD_WAIT_SECONDS": "0.3"}, wait="/healthz")
    resp = fn.post("/predict", json=ROW)
    assert resp.status_code == 503
    assert "still loading" in resp.json()["error"]["message"]
    assert resp.headers["retry-after"] == "5"
    assert fn.get("/readyz").json() == {"ready": False, "reason": "model is loading"}


def test_sha256_mismatch_is_refused_and_readiness_stays_503(serve, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    model = tmp_path / "m" / "iris.onnx"
    model.write_bytes(DEMO_MODEL.read_bytes()[:-1] + b"\x00")  # corrupted in transit
    (tmp_path / "m" / "iris.card.json").write_text(DEMO_CARD.read_text())
    fn = serve({"MODEL_URI": str(model)}, wait="/healthz")
    ready = fn.get("/readyz")
    for _ in range(100):
        if "sha256" in ready.text:
            break
        ready = fn.get("/readyz")
    assert ready.status_code == 503 and "sha256 mismatch" in ready.json()["reason"]
    resp = fn.post("/predict", json=ROW)
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "model_not_ready"
    assert "sha256 mismatch" in resp.json()["error"]["message"]
    assert fn.get("/healthz").status_code == 200
    assert fn.get("/model").status_code == 503


def test_missing_model_fails_readiness_with_the_uri(serve, gcs_env, gcs_bucket) -> None:
    uri = f"gs://{gcs_bucket.name}/nothing/model.onnx"
    fn = serve({**gcs_env, "MODEL_URI": uri}, wait="/healthz")
    resp = fn.post("/predict", json=ROW)
    assert resp.status_code == 503
    assert "nothing/model.card.json" in resp.json()["error"]["message"]


def test_cloud_sdks_are_not_imported_for_a_local_model(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import main, sys, time; main._rt.holder._done.wait(30); "
            "print(any(m.startswith(('google.cloud.storage', 'boto3')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent, timeout=60,
                         env={"MODEL_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "False", out.stderr
