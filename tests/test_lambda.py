"""main.lambda_handler called with the event shapes AWS documents; S3 and SQS are moto's
server (a real S3 -> SQS notification included), the HTTP events go through Mangum to the
same Router as functions-framework."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.eventfiles import lambda_handler, load, reset_runtime, sqs_event
from tests.servers import free_port

ROW = [5.1, 3.5, 1.4, 0.2]


def _lines(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return [json.loads(x) for x in body.splitlines()]


@pytest.mark.parametrize("name", ["apigw_v1.json", "apigw_v2.json"])
def test_api_gateway_requests_reach_the_http_routes(aws_lambda, name: str) -> None:
    resp = lambda_handler()(load(name), None)
    assert resp["statusCode"] == 200, resp
    assert json.loads(resp["body"])["predictions"][0]["label"] == "setosa"


def test_function_url_and_the_error_contract(aws_lambda) -> None:
    bad = load("apigw_v2.json")
    bad["body"] = base64.b64encode(b'{"instances": [[1, 2]]}').decode()
    resp = lambda_handler()(bad, None)  # /predict waits for the model load; /model does not
    assert resp["statusCode"] == 422
    assert json.loads(resp["body"])["error"]["code"] == "validation_failed"
    resp = lambda_handler()(load("function_url.json"), None)
    assert resp["statusCode"] == 200 and json.loads(resp["body"])["name"] == "iris"


def test_s3_object_created_scores_the_file(aws_lambda) -> None:
    s3, bucket = aws_lambda
    key = "inputs/batch one.csv"  # arrives URL-encoded in the event: inputs/batch+one.csv
    s3.put_object(Bucket=bucket, Key=key, Body=b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\nx,1,2,3\n")
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    event = load("s3_put.json")
    obj = event["Records"][0]["s3"]
    obj["bucket"]["name"], obj["object"]["key"], obj["object"]["eTag"] = \
        bucket, "inputs/batch+one.csv", etag
    lambda_handler()(event, None)
    out = _lines(s3, bucket, f"outputs/batch one.csv.{etag}.jsonl")
    assert [o["prediction"]["label"] for o in out] == ["setosa", "virginica"]
    [err] = _lines(s3, bucket, f"errors/batch one.csv.{etag}.errors.jsonl")
    assert (err["row"], err["line"]) == (2, 3)


def test_s3_notification_through_a_real_sqs_queue(aws_lambda) -> None:
    import boto3

    s3, bucket = aws_lambda
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

    result = lambda_handler()(sqs_event(messages, arn), None)
    assert result == {"batchItemFailures": []}
    [key] = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="outputs/")["Contents"]]
    assert key.startswith("outputs/day.jsonl.")
    assert [o["row"] for o in _lines(s3, bucket, key)] == [0]


def test_sqs_poison_is_kept_and_a_storage_outage_reported(aws_lambda, monkeypatch) -> None:
    s3, bucket = aws_lambda
    event = load("sqs_receive.json")
    good = event["Records"][0]
    poison = {**good, "messageId": "poison-1", "body": "not json"}
    event["Records"] = [good, poison]
    assert lambda_handler()(event, None) == {"batchItemFailures": []}
    assert _lines(s3, bucket, f"results/{good['messageId']}.jsonl")[0]["row"] == 0
    kept = json.loads(s3.get_object(Bucket=bucket, Key="errors/poison/sqs/poison-1.json")[
        "Body"].read())
    assert (kept["id"], kept["payload"]) == ("poison-1", "not json")
    assert "not JSON" in kept["reason"] and kept["attributes"]["sqs"]["SenderId"]

    # S3 unreachable: both are handed back (the poison cannot be kept: nothing is lost)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    reset_runtime()
    fresh = {**good, "messageId": "fresh-1"}
    event["Records"] = [fresh, poison]
    assert lambda_handler()(event, None) == {"batchItemFailures": [
        {"itemIdentifier": "fresh-1"}, {"itemIdentifier": "poison-1"}]}


def test_sqs_poison_to_dlq_reports_poison_for_the_redrive_policy(aws_lambda,
                                                                 monkeypatch) -> None:
    s3, bucket = aws_lambda
    monkeypatch.setenv("SQS_POISON_TO_DLQ", "true")
    reset_runtime()
    event = load("sqs_receive.json")
    event["Records"].append({**event["Records"][0], "messageId": "poison-2", "body": "[1"})
    assert lambda_handler()(event, None) == {"batchItemFailures": [{"itemIdentifier": "poison-2"}]}
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="errors/")
