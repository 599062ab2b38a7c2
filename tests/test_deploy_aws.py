"""deploy/aws-lambda.sh for real, against moto's server (awscli with --endpoint-url).

The image build and push (docker) are skipped with --skip-build: moto accepts an ECR image URI
without the image. Everything else runs: the ECR repository, the role, the function, its URL,
the S3 and SQS triggers; a second run with a new image and settings updates them in place.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from tests.deploy_fixtures.dry_run import config_with, run_script, script_env


def _deploy(config: Path, env: dict[str, str], tag: str) -> str:
    result = run_script(
        "aws-lambda.sh",
        "--skip-build",
        config=config,
        timeout=300,
        env=script_env(**env, IMAGE_TAG=tag),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def test_lambda_deploy_creates_then_updates(
    s3_server: str, s3_env: dict[str, str], tmp_path: Path
) -> None:
    name = f"onnx-deploy-{tmp_path.name[-12:].strip('_').lower()}".replace("_", "-")
    settings = dict(
        AWS_ENDPOINT_URL=s3_server,
        AWS_REGION="us-east-1",
        AWS_FUNCTION_NAME=name,
        AWS_ECR_REPOSITORY=name,
        AWS_ROLE_NAME=name,
        AWS_S3_BUCKET=f"{name}-inbox",
        AWS_SQS_QUEUE=f"{name}-requests",
        AWS_SQS_DEAD_LETTER_QUEUE=f"{name}-dead-letter",
        AWS_URL_AUTH="NONE",
    )
    first = _deploy(config_with(tmp_path, **settings), s3_env, "run1")
    (tmp_path / "second").mkdir()
    second_config = config_with(
        tmp_path / "second", **settings, AWS_MEMORY_MB="3008", AWS_SQS_BATCH_SIZE="5"
    )
    second = _deploy(second_config, s3_env, "run2")

    aws = {"endpoint_url": s3_server, "region_name": "us-east-1"}
    lam, s3, sqs = (boto3.client(s, **aws) for s in ("lambda", "s3", "sqs"))
    function = lam.get_function(FunctionName=name)
    config = function["Configuration"]
    assert config["PackageType"] == "Image"
    assert function["Code"]["ImageUri"].endswith(f"/{name}:run2")
    assert config["MemorySize"] == 3008
    assert (
        config["Environment"]["Variables"]["MODEL_URI"]
        == "s3://my-ml-project-models/models/iris/1/model.onnx"
    )
    arn = config["FunctionArn"]

    url = lam.get_function_url_config(FunctionName=name)
    assert url["AuthType"] == "NONE"
    assert f"url: {url['FunctionUrl']}" in first and f"url: {url['FunctionUrl']}" in second
    assert f"lambda function: {arn}" in second

    statements = json.loads(lam.get_policy(FunctionName=name)["Policy"])["Statement"]
    assert sorted(s["Sid"] for s in statements) == ["function-url-public", "s3-invoke"]

    notification = s3.get_bucket_notification_configuration(Bucket=f"{name}-inbox")
    (trigger,) = notification["LambdaFunctionConfigurations"]
    assert trigger["LambdaFunctionArn"] == arn and trigger["Events"] == ["s3:ObjectCreated:*"]
    assert trigger["Filter"]["Key"]["FilterRules"][0]["Value"] == "incoming/"

    queue_url = sqs.get_queue_url(QueueName=f"{name}-requests")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    (mapping,) = lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
    assert mapping["EventSourceArn"] == queue_arn and mapping["BatchSize"] == 5
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]

    # dead letters: the queue's redrive policy and the S3 (asynchronous) on-failure target
    dlq_url = sqs.get_queue_url(QueueName=f"{name}-dead-letter")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    redrive = json.loads(
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])[
            "Attributes"
        ]["RedrivePolicy"]
    )
    assert redrive["deadLetterTargetArn"] == dlq_arn and int(redrive["maxReceiveCount"]) == 5
    invoke = lam.get_function_event_invoke_config(FunctionName=name)
    assert invoke["MaximumRetryAttempts"] == 2
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == dlq_arn
