"""AWS Lambda: HTTP events through the same Router; S3, EventBridge, SNS and SQS records
through the same event handlers as Google Cloud.

    lambda_adapter.py  LambdaAdapter (``main.lambda_handler`` calls it)
    records.py         AWS envelopes (S3, EventBridge, SNS, SQS, SNS in SQS) unwrapped
"""

from functions.aws.lambda_adapter import LambdaAdapter

__all__ = ["LambdaAdapter"]
