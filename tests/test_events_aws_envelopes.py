"""Every common AWS envelope reaches the same paths as S3 and SQS records: EventBridge S3
events and SNS records (recorded samples), SNS inside SQS with and without raw delivery,
and the S3 -> SNS -> SQS fan-out, the last two delivered by moto's real services."""

from __future__ import annotations

import json
from typing import Any

import boto3

from tests.eventfiles import lambda_handler, load, sqs_event
from tests.servers import free_port

SETOSA = [5.1, 3.5, 1.4, 0.2]


def _lines(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return [json.loads(x) for x in body.splitlines()]


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get(
        "Contents", []))


def test_eventbridge_object_created_is_scored(aws_lambda) -> None:
    s3, bucket = aws_lambda
    key = "inputs/a b+c.csv"  # EventBridge does not URL-encode keys
    etag = s3.put_object(Bucket=bucket, Key=key, Body=b"5.1,3.5,1.4,0.2\n")["ETag"].strip('"')
    event = load("s3_eventbridge_object_created.json")
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update(key=key, etag=etag)
    del event["detail"]["object"]["version-id"]  # an unversioned bucket sends none
    assert lambda_handler()(event, None) == {"records": 1}
    assert _lines(s3, bucket, f"outputs/a b+c.csv.{etag}.jsonl")[0]["prediction"]["label"] == \
        "setosa"
    deleted = {**event, "detail-type": "Object Deleted"}
    assert lambda_handler()(deleted, None) == {"records": 1}  # acknowledged, nothing to do


def test_sns_records_are_messages_and_poison_is_kept(aws_lambda) -> None:
    s3, bucket = aws_lambda
    event = load("sns_notification.json")
    good = event["Records"][0]["Sns"]
    poison = dict(good, MessageId="sns-poison")  # the recorded "Hello from SNS!"
    event["Records"].append({**event["Records"][0], "Sns": poison})
    good["Message"] = json.dumps({"instances": [SETOSA]})
    assert lambda_handler()(event, None) == {"records": 2}
    assert _lines(s3, bucket, f"results/{good['MessageId']}.jsonl")[0]["row"] == 0
    kept = json.loads(s3.get_object(Bucket=bucket, Key="errors/poison/sns/sns-poison.json")[
        "Body"].read())
    assert kept["payload"] == "Hello from SNS!" and kept["attributes"]["Test"] == "TestString"


def test_recorded_sns_in_sqs_is_unwrapped(aws_lambda) -> None:
    s3, bucket = aws_lambda
    event = load("sqs_sns_notification.json")
    record = event["Records"][0]
    note = json.loads(record["body"])
    assert "hello world" in note["Message"]  # as recorded: no instances, so poison
    assert lambda_handler()(event, None) == {"batchItemFailures": []}
    kept = json.loads(s3.get_object(
        Bucket=bucket, Key=f"errors/poison/sqs/{record['messageId']}.json")["Body"].read())
    assert '"instances" or "uri"' in kept["reason"] and kept["payload"] == record["body"]

    note["Message"] = json.dumps({"instances": [SETOSA]})
    record.update(body=json.dumps(note), messageId="sqs-2")
    assert lambda_handler()(event, None) == {"batchItemFailures": []}
    # named by the SNS message id: the same notification through two queues scores once
    assert _lines(s3, bucket, f"results/{note['MessageId']}.jsonl")[0]["row"] == 0


def _queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    return url, arn


def _fan_out(name: str) -> tuple[Any, str, dict[str, tuple[str, str]]]:
    """An SNS topic with two SQS subscriptions: ``wrapped`` (default) and ``raw``."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name=name)["TopicArn"]
    queues = {kind: _queue(sqs, f"{name}-{kind}") for kind in ("wrapped", "raw")}
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queues["wrapped"][1])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queues["raw"][1],
                  Attributes={"RawMessageDelivery": "true"})
    return sns, topic, queues


def _deliver(queues: dict[str, tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """What each queue holds, handed to the function as SQS events."""
    sqs, results = boto3.client("sqs"), {}
    for kind, (url, arn) in queues.items():
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                       MessageAttributeNames=["All"])["Messages"]
        results[kind] = {"messages": messages,
                         "answer": lambda_handler()(sqs_event(messages, arn), None)}
    return results


def test_sns_to_sqs_with_and_without_raw_delivery(aws_lambda) -> None:
    s3, bucket = aws_lambda
    sns, topic, queues = _fan_out(f"requests-{free_port()}")
    sns_id = sns.publish(TopicArn=topic, Message=json.dumps({"instances": [SETOSA]}))["MessageId"]
    got = _deliver(queues)
    assert all(g["answer"] == {"batchItemFailures": []} for g in got.values())
    [raw] = got["raw"]["messages"]
    assert _keys(s3, bucket, "results/") == sorted(
        [f"results/{sns_id}.jsonl", f"results/{raw['MessageId']}.jsonl"])


def test_s3_to_sns_to_sqs_fan_out_reaches_the_storage_path(aws_lambda) -> None:
    s3, bucket = aws_lambda
    sns, topic, queues = _fan_out(f"uploads-{free_port()}")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]})
    etag = s3.put_object(Bucket=bucket, Key="inputs/new day.csv",
                         Body=b"5.1,3.5,1.4,0.2\n")["ETag"].strip('"')
    got = _deliver(queues)
    for kind in ("wrapped", "raw"):  # the s3:TestEvent, the upload (and our own output)
        assert len(got[kind]["messages"]) >= 2 and got[kind]["answer"] == {
            "batchItemFailures": []}
    assert _keys(s3, bucket, "outputs/") == [f"outputs/new day.csv.{etag}.jsonl"]
    assert _keys(s3, bucket, "errors/") == []
