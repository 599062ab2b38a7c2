"""AWS Lambda: HTTP events through the same Router, S3 and SQS records through the same
event handlers as Google Cloud.

    lambda_adapter.py  LambdaAdapter (``main.lambda_handler`` calls it)
"""

from functions.aws.lambda_adapter import LambdaAdapter

__all__ = ["LambdaAdapter"]
