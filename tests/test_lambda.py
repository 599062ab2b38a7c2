"""main.lambda_handler called with the event shapes AWS documents; S3 and SQS are moto's
server (a real S3 -> SQS notification included), the HTTP events go through Mangum to the
same Router as functions-framework."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import AWS_FAKE
from tests.eventfiles import load
from tests.servers import free_port

ROW = [5.1, 3.5, 1.4, 0.2]


def _reset_runtime() -> None:
    from functions.loading.sdk_clients import s3_client
    from functions.runtime import runtime

    runtime.cache_clear()
    s3_client.cache_clear()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, s3_server: str, tmp_path) -> Iterator[tuple[Any, str]]:
    """(boto3 S3 client, bucket) with the instance rebuilt from this test's environment."""
    import boto3

    bucket = f"lambda-{free_port()}"
    for key, value in {**AWS_FAKE, "AWS_ENDPOINT_URL": s3_server, "MODEL_CACHE_DIR": str(tmp_path),
                       "MESSAGE_OUTPUT_URI": f"s3://{bucket}/results/"}.items():
        monkeypatch.setenv(key, value)
    _reset_runtime()
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    yield s3, bucket
    _reset_runtime()


def _handler():  # imported late: main.py builds the instance at import
    from main import lambda_handler

    return lambda_handler


def _lines(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return [json.loads(x) for x in body.splitlines()]


@pytest.mark.parametrize("name", ["apigw_v1.json", "apigw_v2.json"])
def test_api_gateway_requests_reach_the_http_routes(aws, name: str) -> None:
    resp = _handler()(load(name), None)
    assert resp["statusCode"] == 200, resp
    assert json.loads(resp["body"])["predictions"][0]["label"] == "setosa"


def test_function_url_and_the_error_contract(aws) -> None:
    bad = load("apigw_v2.json")
    bad["body"] = base64.b64encode(b'{"instances": [[1, 2]]}').decode()
    resp = _handler()(bad, None)  # /predict waits for the model load; /model does not
    assert resp["statusCode"] == 422
    assert json.loads(resp["body"])["error"]["code"] == "validation_failed"
    resp = _handler()(load("function_url.json"), None)
    assert resp["statusCode"] == 200 and json.loads(resp["body"])["name"] == "iris"


def test_s3_object_created_scores_the_file(aws) -> None:
    s3, bucket = aws
    key = "inputs/batch one.csv"  # arrives URL-encoded in the event: inputs/batch+one.csv
    s3.put_object(Bucket=bucket, Key=key, Body=b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\nx,1,2,3\n")
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    event = load("s3_put.json")
    obj = event["Records"][0]["s3"]
    obj["bucket"]["name"], obj["object"]["key"], obj["object"]["eTag"] = \
        bucket, "inputs/batch+one.csv", etag
    _handler()(event, None)
    out = _lines(s3, bucket, f"outputs/batch one.csv.{etag}.jsonl")
    assert [o["prediction"]["label"] for o in out] == ["setosa", "virginica"]
    [err] = _lines(s3, bucket, f"errors/batch one.csv.{etag}.errors.jsonl")
    assert (err["row"], err["line"]) == (2, 3)


def _sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Received SQS messages as the Lambda SQS event shape (tests/events/sqs_receive.json)."""
    template = load("sqs_receive.json")["Records"][0]
    records = []
    for msg in messages:
        record = copy.deepcopy(template)
        record.update(messageId=msg["MessageId"], receiptHandle=msg["ReceiptHandle"],
                      body=msg["Body"], md5OfBody=msg["MD5OfBody"], eventSourceARN=queue_arn)
        records.append(record)
    return {"Records": records}


def test_s3_notification_through_a_real_sqs_queue(aws) -> None:
    import boto3

    s3, bucket = aws
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"uploads-{free_port()}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url,
                                   AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    s3.put_object(Bucket=bucket, Key="inputs/day.jsonl", Body=b"[5.1, 3.5, 1.4, 0.2]\n[1]\n")
    s3.put_object(Bucket=bucket, Key="elsewhere/notes.jsonl", Body=b"[1, 2, 3, 4]\n")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                   WaitTimeSeconds=1)["Messages"]
    assert any('"aws:s3"' in m["Body"] for m in messages)

    result = _handler()(_sqs_event(messages, arn), None)
    assert result == {"batchItemFailures": []}
    [key] = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="outputs/")["Contents"]]
    assert key.startswith("outputs/day.jsonl.")
    assert [o["row"] for o in _lines(s3, bucket, key)] == [0]


def test_sqs_messages_report_only_retryable_failures(aws, monkeypatch) -> None:
    s3, bucket = aws
    event = load("sqs_receive.json")
    good = event["Records"][0]
    poison = {**good, "messageId": "poison-1", "body": "not json"}
    event["Records"] = [good, poison]
    assert _handler()(event, None) == {"batchItemFailures": []}
    assert _lines(s3, bucket, f"results/{good['messageId']}.jsonl")[0]["row"] == 0

    # S3 unreachable: the good message is handed back, the poison one still acknowledged
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    _reset_runtime()
    assert _handler()(event, None) == {"batchItemFailures": [{"itemIdentifier": good["messageId"]}]}
