"""Delivery semantics on AWS, main.lambda_handler against moto: a FIFO batch stops at its
first failure; a version or key deleted since the event is acknowledged as missing; an
event we do not handle is refused; duplicate deliveries, even concurrent, leave one result;
odd keys (``..``, empty segments, unicode, spaces, ``+``, 1,024 bytes) keep outputs and
errors under their prefixes, named the same way every time."""

from __future__ import annotations

import copy
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest

from functions.events.failures import Unhandled
from tests.eventfiles import lambda_handler, load, reset_runtime, sqs_event
from tests.servers import free_port

SETOSA = [5.1, 3.5, 1.4, 0.2]


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _s3_event(bucket: str, key: str, etag: str, version: str | None = None) -> dict[str, Any]:
    event = load("s3_put_versioned.json")
    obj = event["Records"][0]["s3"]
    obj["bucket"]["name"] = bucket
    obj["object"].update(key=quote_plus(key, safe="/"), eTag=etag, versionId=version)
    if version is None:
        del obj["object"]["versionId"]
    return event


def test_fifo_batch_stops_at_the_first_failure(aws_lambda, monkeypatch) -> None:
    s3, bucket = aws_lambda
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")  # down
    monkeypatch.setenv("STORAGE_RETRY_SECONDS", "1")
    reset_runtime()
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"orders-{free_port()}.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    bodies = [{"instances": [SETOSA]}, {"uri": "gs://down/rows.csv"},
              {"instances": [SETOSA, SETOSA]}, "poison"]  # distinct: content deduplication
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body), MessageGroupId="g")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                   AttributeNames=["All"])["Messages"]
    event = sqs_event(messages, arn, "sqs_fifo_sns_notification.json")
    assert event["Records"][0]["attributes"]["MessageGroupId"] == "g"

    ids = [m["MessageId"] for m in messages]
    assert lambda_handler()(event, None) == {
        "batchItemFailures": [{"itemIdentifier": i} for i in ids[1:]]}
    assert _keys(s3, bucket, "results/") == [f"results/{ids[0]}.jsonl"]  # nothing overtook
    assert _keys(s3, bucket, "errors/") == []

    standard = copy.deepcopy(event)  # the same batch from a standard queue: each on its own
    for record in standard["Records"]:
        record["eventSourceARN"] = record["eventSourceARN"].removesuffix(".fifo")
    assert lambda_handler()(standard, None) == {"batchItemFailures": [{"itemIdentifier": ids[1]}]}
    assert _keys(s3, bucket, "results/") == sorted(f"results/{i}.jsonl" for i in (ids[0], ids[2]))
    assert _keys(s3, bucket, "errors/") == [f"errors/poison/sqs/{ids[3]}.json"]


def test_a_version_or_key_deleted_since_is_acknowledged_as_missing(aws_lambda, caplog) -> None:
    s3, bucket = aws_lambda
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="inputs/v.csv", Body=b"5.1,3.5,1.4,0.2\n")
    s3.put_object(Bucket=bucket, Key="inputs/v.csv", Body=b"6.7,3.0,5.2,2.3\n")
    s3.delete_object(Bucket=bucket, Key="inputs/v.csv", VersionId=first["VersionId"])
    gone = s3.put_object(Bucket=bucket, Key="inputs/gone.csv", Body=b"1,2,3,4\n")
    for version in s3.list_object_versions(Bucket=bucket, Prefix="inputs/gone.csv")["Versions"]:
        s3.delete_object(Bucket=bucket, Key="inputs/gone.csv", VersionId=version["VersionId"])

    with caplog.at_level(logging.WARNING, "functions.events"):
        for key, reply in (("inputs/v.csv", first), ("inputs/gone.csv", gone)):
            event = _s3_event(bucket, key, reply["ETag"].strip('"'), reply["VersionId"])
            assert lambda_handler()(event, None) == {"records": 1}  # no raise: no retry
    assert caplog.text.count(": missing (") == 2
    assert "NoSuchVersion" in caplog.text
    assert _keys(s3, bucket, "outputs/") == [] and _keys(s3, bucket, "errors/") == []


def test_an_event_we_do_not_handle_is_refused_clearly(aws_lambda, caplog) -> None:
    event = {"version": "0", "id": "e-1", "detail-type": "Scheduled Event",
             "source": "aws.events", "detail": {}}
    with caplog.at_level(logging.ERROR, "functions.events"), \
            pytest.raises(Unhandled, match="unsupported Lambda event"):
        lambda_handler()(event, None)
    assert "refused, for the platform to dead-letter" in caplog.text


def _concurrently(calls: int, fn: Any) -> list[Any]:
    with ThreadPoolExecutor(calls) as pool:
        return list(pool.map(lambda _: fn(), range(calls)))


def test_duplicate_deliveries_at_once_leave_one_result(aws_lambda) -> None:
    s3, bucket = aws_lambda
    etag = s3.put_object(Bucket=bucket, Key="inputs/dup.csv",
                         Body=b"5.1,3.5,1.4,0.2\nx\n")["ETag"].strip('"')
    s3_event = _s3_event(bucket, "inputs/dup.csv", etag)
    sqs = load("sqs_receive.json")
    lambda_handler()(load("apigw_v2.json"), None)  # warm: the model loads once, first
    for _ in range(2):  # twice four at once: the first round races, the second finds it done
        assert _concurrently(4, lambda: lambda_handler()(s3_event, None)) == [{"records": 1}] * 4
        assert _concurrently(4, lambda: lambda_handler()(sqs, None)) == [
            {"batchItemFailures": []}] * 4
    assert _keys(s3, bucket, "outputs/") == [f"outputs/dup.csv.{etag}.jsonl"]
    assert _keys(s3, bucket, "errors/") == [f"errors/dup.csv.{etag}.errors.jsonl"]
    assert _keys(s3, bucket, "results/") == [f"results/{sqs['Records'][0]['messageId']}.jsonl"]


ODD_KEYS = ["inputs/../../etc/up.csv", "inputs/a//b.csv", "inputs/./dot.csv",
            "inputs/naïve ünïcode+plus 100%.csv", "inputs/" + "é" * 505 + ".csv"]


def test_odd_keys_keep_outputs_and_errors_under_their_prefixes(aws_lambda) -> None:
    s3, bucket = aws_lambda
    assert len(ODD_KEYS[-1].encode()) == 1021  # near the 1,024-byte maximum
    events = []
    for key in ODD_KEYS:
        etag = s3.put_object(Bucket=bucket, Key=key, Body=b"5.1,3.5,1.4,0.2\nx,1,2,3\n")[
            "ETag"].strip('"')
        events.append(_s3_event(bucket, key, etag))
    for event in events:
        assert lambda_handler()(event, None) == {"records": 1}
    outputs, errors = _keys(s3, bucket, "outputs/"), _keys(s3, bucket, "errors/")
    assert len(outputs) == len(errors) == len(ODD_KEYS)  # one each, none shared
    for name in outputs + errors:
        assert len(name.encode()) <= 1024
        assert "/../" not in name and "/./" not in name and "//" not in name
    assert "outputs/%2E%2E/%2E%2E/etc/up.csv." in " ".join(outputs)
    assert any(n.startswith("outputs/naïve ünïcode+plus 100%25.csv.") for n in outputs)
    for event in events:  # redelivered: found done under the same names
        assert lambda_handler()(event, None) == {"records": 1}
    assert _keys(s3, bucket, "outputs/") == outputs and _keys(s3, bucket, "errors/") == errors
