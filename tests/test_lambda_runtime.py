"""main.lambda_handler under AWS's own runtime interface client (awslambdaric, the one in
the Python base images), fed events made by ``sam local generate-event`` (AWS SAM CLI):
API Gateway REST (v1) and HTTP API (v2), ALB, S3 put and delete, SQS and SNS. Each is
answered as docs/events.md says.

The Runtime API is a local stand-in (tests/lambda_runtime_api.py: the far end of the
network); S3 is moto's server. awslambdaric runs with the serving venv's python and its
own venv's site-packages on the path, as the base image puts it beside the function's
dependencies. The events are generated once per session (sam takes seconds a run)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.client_venvs import client_bin
from tests.conftest import AWS_FAKE
from tests.lambda_runtime_api import RuntimeApi
from tests.servers import ROOT, free_port, stop_group

BODY = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}
LABELS = ["setosa", "virginica"]


@pytest.fixture(scope="session")
def sam_event() -> Callable[..., dict[str, Any]]:
    """``sam_event("sqs", "receive-message", body=...)`` -> the event sam generates, run once
    per distinct command in the session. Values go in as sam takes them: an HTTP body as
    it is (sam base64-encodes it), an SQS body or SNS message escaped (sam puts it into its
    template's JSON string as it is)."""
    made: dict[tuple, dict[str, Any]] = {}

    def generate(service: str, kind: str, **options: str) -> dict[str, Any]:
        key = (service, kind, *sorted(options.items()))
        if key not in made:
            args = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
            done = subprocess.run([str(client_bin("sam", "sam")), "local", "generate-event",
                                   service, kind, *args], capture_output=True, text=True,
                                  timeout=120, env={**os.environ, "SAM_CLI_TELEMETRY": "0"})
            assert done.returncode == 0, done.stderr[-2000:]
            made[key] = json.loads(done.stdout)
        return made[key]

    return generate


def _escaped(value: Any) -> str:
    """A JSON text as the inside of a JSON string (what sam's templates expect)."""
    return json.dumps(json.dumps(value))[1:-1]


@pytest.fixture(scope="module")
def lambda_env(s3_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """(Runtime API, S3 client, bucket): awslambdaric running main.lambda_handler."""
    import boto3

    bucket = f"ric-{free_port()}"
    aws = {**AWS_FAKE, "AWS_ENDPOINT_URL": s3_server}
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket)
    api = RuntimeApi()
    ric = client_bin("lambdaric").parent.parent
    site = next(ric.glob("lib/python*/site-packages"))
    tmp = tmp_path_factory.mktemp("lambda-ric")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MODEL_"))},
           **aws, "AWS_LAMBDA_RUNTIME_API": api.address, "PYTHONPATH": f"{site}:{ROOT}",
           "AWS_LAMBDA_FUNCTION_NAME": "onnx-serverless", "LAMBDA_TASK_ROOT": str(ROOT),
           "MODEL_CACHE_DIR": str(tmp / "model-cache"),
           "MESSAGE_OUTPUT_URI": f"s3://{bucket}/results/"}
    with open(tmp / "runtime.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "awslambdaric", "main.lambda_handler"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            yield api, s3, bucket, tmp / "runtime.log"
        finally:
            stop_group(proc)
            api.stop()


def _invoke(lambda_env: Any, event: dict[str, Any]) -> Any:
    api, _, _, log = lambda_env
    outcome, body = api.invoke(event)
    assert outcome == "response", f"{body}\n--- runtime log ---\n{log.read_text()[-3000:]}"
    return body


def _http_answer(response: dict[str, Any]) -> Any:
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body)
    return json.loads(body)


@pytest.mark.parametrize("service, kind", [("apigateway", "aws-proxy"),
                                           ("apigateway", "http-api-proxy"),
                                           ("alb", "request")])
def test_http_events_are_answered_by_the_router(lambda_env, sam_event, service: str,
                                                kind: str) -> None:
    event = sam_event(service, kind, method="POST", path="predict", body=json.dumps(BODY))
    response = _invoke(lambda_env, event)
    assert response["statusCode"] == 200, response
    assert [p["label"] for p in _http_answer(response)["predictions"]] == LABELS


def test_an_http_event_with_a_bad_body_gets_the_error_contract(lambda_env, sam_event) -> None:
    event = sam_event("apigateway", "aws-proxy", method="POST", path="predict",
                      body=json.dumps({"instances": [[1, 2]]}))
    response = _invoke(lambda_env, event)
    assert response["statusCode"] == 422
    assert _http_answer(response)["error"]["details"][0]["index"] == 0


def _s3_event(lambda_env, sam_event, kind: str, key: str) -> dict[str, Any]:
    _, s3, bucket, _ = lambda_env
    event = sam_event("s3", kind, bucket=bucket, key=key)
    if kind == "put":  # S3 names the object it stored: its real size and eTag
        head = s3.head_object(Bucket=bucket, Key=key)
        record = event["Records"][0]["s3"]["object"]
        record.update(size=head["ContentLength"], eTag=head["ETag"].strip('"'))
    return event


def test_s3_put_scores_the_file_and_delete_is_acknowledged(lambda_env, sam_event) -> None:
    _, s3, bucket, _ = lambda_env
    rows = "".join(json.dumps(r) + "\n" for r in BODY["instances"])
    s3.put_object(Bucket=bucket, Key="inputs/rows.jsonl", Body=rows.encode())
    _invoke(lambda_env, _s3_event(lambda_env, sam_event, "put", "inputs/rows.jsonl"))
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="outputs/")["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("outputs/rows.jsonl.")
    lines = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read().decode().splitlines()
    assert [json.loads(line)["prediction"]["label"] for line in lines] == LABELS
    s3.delete_object(Bucket=bucket, Key="inputs/rows.jsonl")
    _invoke(lambda_env, _s3_event(lambda_env, sam_event, "delete", "inputs/rows.jsonl"))
    assert len(s3.list_objects_v2(Bucket=bucket, Prefix="outputs/")["Contents"]) == 1


def _result(lambda_env, message_id: str) -> list[str]:
    _, s3, bucket, _ = lambda_env
    body = s3.get_object(Bucket=bucket, Key=f"results/{message_id}.jsonl")["Body"].read()
    return [json.loads(line)["prediction"]["label"] for line in body.decode().splitlines()]


def test_an_sqs_message_is_scored_and_acknowledged(lambda_env, sam_event) -> None:
    event = sam_event("sqs", "receive-message", body=_escaped(BODY))
    assert _invoke(lambda_env, event) == {"batchItemFailures": []}
    assert _result(lambda_env, event["Records"][0]["messageId"]) == LABELS


def test_an_sns_notification_is_scored(lambda_env, sam_event) -> None:
    event = sam_event("sns", "notification", message=_escaped(BODY))
    _invoke(lambda_env, event)
    assert _result(lambda_env, event["Records"][0]["Sns"]["MessageId"]) == LABELS
