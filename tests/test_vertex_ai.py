"""Vertex AI: the model in AIP_STORAGE_URI (the gs:// folder Vertex copies a model's
artifacts to) is served when MODEL_URI is unset, and the real ``gcloud ai endpoints
predict`` and ``raw-predict`` get their answers from the function.

gcloud is pointed at the function served by functions-framework
(CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM, no credentials, an empty config folder); the
function's AIP_PREDICT_ROUTE is the path gcloud calls, as Vertex AI forwards both methods
to that one route of the container. Storage is the GCS emulator."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import DEMO_CARD, DEMO_MODEL
from tests.inprocess import InProcess

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
ENDPOINT = "projects/test-project/locations/us-central1/endpoints/1234"


def _artifacts(bucket, folder: str, *names: str) -> str:
    for name in names:
        bucket.blob(f"{folder}/{name}.onnx").upload_from_filename(str(DEMO_MODEL))
        bucket.blob(f"{folder}/{name}.card.json").upload_from_filename(str(DEMO_CARD))
    return f"gs://{bucket.name}/{folder}"


def test_the_model_in_aip_storage_uri_serves(app, gcs_env, gcs_bucket) -> None:
    folder = _artifacts(gcs_bucket, "vertex/artifacts", "iris")
    gcs_bucket.blob("vertex/artifacts/old/other.onnx").upload_from_filename(str(DEMO_MODEL))
    fn: InProcess = app({**gcs_env, "AIP_STORAGE_URI": folder})
    resp = fn.post("/predict", json={"instances": ROWS})
    assert resp.status_code == 200, resp.text
    assert [p["label"] for p in resp.json()["predictions"]] == ["setosa", "virginica"]


def test_a_folder_without_exactly_one_model_fails_readiness_naming_them(
        app, gcs_env, gcs_bucket) -> None:
    folder = _artifacts(gcs_bucket, "two", "a", "b")
    fn = app({**gcs_env, "AIP_STORAGE_URI": folder + "/"}, wait="/healthz")
    resp = fn.get("/readyz")
    while resp.status_code == 503 and "failed" not in resp.text:
        resp = fn.get("/readyz")
    assert resp.status_code == 503
    assert "holds 2 .onnx files" in resp.text and f"{folder}/a.onnx" in resp.text
    assert "MODEL_URI" in resp.text


def test_model_uri_wins_over_aip_storage_uri(app, gcs_env, gcs_bucket) -> None:
    fn = app({**gcs_env, "AIP_STORAGE_URI": f"gs://{gcs_bucket.name}/empty",
              "MODEL_URI": str(DEMO_MODEL)})
    assert fn.post("/predict", json={"instances": ROWS}).status_code == 200


def _gcloud(args: list[str], function_url: str, config: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(config), "CLOUDSDK_CONFIG": str(config),
           "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true", "CLOUDSDK_CORE_PROJECT": "test-project",
           "CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM": function_url + "/",
           "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
    return subprocess.run([shutil.which("gcloud") or "gcloud", "ai", "endpoints", *args,
                           "1234", "--region=us-central1"], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("method", ["predict", "raw-predict"])
def test_gcloud_ai_endpoints_gets_the_functions_answer(serve, gcs_env, gcs_bucket,
                                                        tmp_path: Path, method: str) -> None:
    route = f"/v1/{ENDPOINT}:" + ("predict" if method == "predict" else "rawPredict")
    fn = serve({**gcs_env, "AIP_STORAGE_URI": _artifacts(gcs_bucket, "artifacts", "iris"),
                "AIP_PREDICT_ROUTE": route, "AIP_HEALTH_ROUTE": "/health"})
    expected = fn.post("/predict", json={"instances": ROWS}).json()["predictions"]
    config = tmp_path / "gcloud-config"
    config.mkdir()
    body = json.dumps({"instances": ROWS})
    if method == "predict":
        request = tmp_path / "request.json"
        request.write_text(body)
        done = _gcloud(["predict", f"--json-request={request}", "--format=json"], fn.url,
                       config)
    else:
        done = _gcloud(["raw-predict", f"--request={body}"], fn.url, config)
    assert done.returncode == 0, done.stderr[-2000:] + fn.log()[-2000:]
    assert json.loads(done.stdout)["predictions"] == expected
    assert fn.get("/health").status_code == 200
