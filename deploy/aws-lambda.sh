#!/usr/bin/env bash
## Usage: deploy/aws-lambda.sh [--config FILE] [--dry-run] [--skip-build] [--help]
##
## Runs the same main.py on AWS Lambda (entry point main.lambda_handler) as a container image
## (deploy/Dockerfile.lambda) in ECR: creates or updates the function and its execution role,
## a Function URL (auth AWS_URL_AUTH), an S3 trigger (objects created under AWS_S3_PREFIX in
## AWS_S3_BUCKET) and an SQS trigger (AWS_SQS_QUEUE, partial batch failures reported).
## Dead letters: the queue AWS_SQS_DEAD_LETTER_QUEUE receives a message AWS_SQS_QUEUE could
## not hand over after AWS_SQS_MAX_RECEIVES receives (its redrive policy), and the record of
## an S3 event still failing after AWS_ASYNC_RETRIES retries (the on-failure destination).
## Prints the function ARN and its URL.
##
##   --config FILE  deploy config (default: deploy/config.env, or $DEPLOY_CONFIG)
##   --dry-run      print the commands, run nothing
##   --skip-build   use the image already pushed for IMAGE_TAG (no docker needed)
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup "$@"
require AWS_REGION AWS_FUNCTION_NAME AWS_ECR_REPOSITORY AWS_ROLE_NAME AWS_MEMORY_MB AWS_TIMEOUT_S \
  AWS_ARCHITECTURE AWS_URL_AUTH AWS_MODEL_URI AWS_S3_BUCKET AWS_SQS_QUEUE AWS_SQS_BATCH_SIZE \
  AWS_SQS_DEAD_LETTER_QUEUE AWS_SQS_MAX_RECEIVES AWS_ASYNC_RETRIES
# shellcheck disable=SC2034  # read by env_lines (lib.sh)
MODEL_URI="$AWS_MODEL_URI"
fn="$AWS_FUNCTION_NAME"

# aws ARGS...: the CLI in AWS_REGION (and at AWS_ENDPOINT_URL when set, e.g. a moto server).
aws_cli=(aws --region "$AWS_REGION")
if [[ -n "${AWS_ENDPOINT_URL:-}" ]]; then
  aws_cli+=(--endpoint-url "$AWS_ENDPOINT_URL")
fi
aws_run() { run "${aws_cli[@]}" "$@"; }
aws_ok() { "${aws_cli[@]}" "$@"; }

capture ACCOUNT 123456789012 "${aws_cli[@]}" sts get-caller-identity --query Account --output text

# --- image -------------------------------------------------------------------------------
ensure "${aws_cli[@]}" ecr describe-repositories --repository-names "$AWS_ECR_REPOSITORY" \
  -- "${aws_cli[@]}" ecr create-repository --repository-name "$AWS_ECR_REPOSITORY" \
  --image-scanning-configuration scanOnPush=true
registry="$ACCOUNT.dkr.ecr.$AWS_REGION.amazonaws.com"
IMAGE="$registry/$AWS_ECR_REPOSITORY:$IMAGE_TAG"
if ((DRY_RUN && !SKIP_BUILD)); then
  show "${aws_cli[@]}" ecr get-login-password
  echo "# piped into:"
  show docker login --username AWS --password-stdin "$registry"
elif ((!SKIP_BUILD)); then
  aws_ok ecr get-login-password | docker login --username AWS --password-stdin "$registry"
fi
build_image "$DEPLOY_DIR/Dockerfile.lambda" "$IMAGE"

# --- execution role ----------------------------------------------------------------------
# One inline policy, scoped to this function's log group, queue and buckets (least privilege
# instead of the broad AWSLambdaBasicExecutionRole / AWSLambdaSQSQueueExecutionRole).
queue_arn="arn:aws:sqs:$AWS_REGION:$ACCOUNT:$AWS_SQS_QUEUE"
dlq_arn="arn:aws:sqs:$AWS_REGION:$ACCOUNT:$AWS_SQS_DEAD_LETTER_QUEUE"
model_object="arn:aws:s3:::${AWS_MODEL_URI#s3://}"
# The model's folder: model + card of one version (.../NAME/VERSION/*), or, for a
# .../NAME/LATEST pointer, the pointer and every version it may name (.../NAME/*).
model_folder="${model_object%/*}/*"
trust='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
permissions="{\"Version\":\"2012-10-17\",\"Statement\":[\
{\"Effect\":\"Allow\",\"Action\":[\"logs:CreateLogGroup\",\"logs:CreateLogStream\",\"logs:PutLogEvents\"],\"Resource\":\"arn:aws:logs:$AWS_REGION:$ACCOUNT:log-group:/aws/lambda/$fn:*\"},\
{\"Effect\":\"Allow\",\"Action\":[\"sqs:ReceiveMessage\",\"sqs:DeleteMessage\",\"sqs:GetQueueAttributes\",\"sqs:ChangeMessageVisibility\"],\"Resource\":\"$queue_arn\"},\
{\"Effect\":\"Allow\",\"Action\":[\"sqs:SendMessage\"],\"Resource\":\"$dlq_arn\"},\
{\"Effect\":\"Allow\",\"Action\":[\"s3:GetObject\"],\"Resource\":[\"$model_folder\",\"arn:aws:s3:::$AWS_S3_BUCKET/*\"]},\
{\"Effect\":\"Allow\",\"Action\":[\"s3:PutObject\"],\"Resource\":\"arn:aws:s3:::$AWS_S3_BUCKET/*\"}]}"
ensure "${aws_cli[@]}" iam get-role --role-name "$AWS_ROLE_NAME" \
  -- "${aws_cli[@]}" iam create-role --role-name "$AWS_ROLE_NAME" --assume-role-policy-document "$trust"
aws_run iam put-role-policy --role-name "$AWS_ROLE_NAME" --policy-name "$fn-runtime" \
  --policy-document "$permissions"
role_arn="arn:aws:iam::$ACCOUNT:role/$AWS_ROLE_NAME"

# --- function ----------------------------------------------------------------------------
environment="{\"Variables\":{"
while IFS= read -r line; do
  environment+="$(json_str "${line%%=*}"):$(json_str "${line#*=}"),"
done < <(env_lines)
environment="${environment%,}}}"
settings=(--role "$role_arn" --memory-size "$AWS_MEMORY_MB" --timeout "$AWS_TIMEOUT_S"
  --environment "$environment")

create_function() {
  aws_run lambda create-function --function-name "$fn" --package-type Image \
    --code "ImageUri=$IMAGE" --architectures "$AWS_ARCHITECTURE" "${settings[@]}"
  aws_run lambda wait function-active-v2 --function-name "$fn"
}
update_function() {
  aws_run lambda update-function-code --function-name "$fn" --image-uri "$IMAGE"
  aws_run lambda wait function-updated-v2 --function-name "$fn"
  aws_run lambda update-function-configuration --function-name "$fn" "${settings[@]}"
  aws_run lambda wait function-updated-v2 --function-name "$fn"
}
upsert "${aws_cli[@]}" lambda get-function --function-name "$fn" -- create_function update_function
capture FUNCTION_ARN "arn:aws:lambda:$AWS_REGION:$ACCOUNT:function:$fn" \
  "${aws_cli[@]}" lambda get-function --function-name "$fn" --query Configuration.FunctionArn --output text

# add_permission SID PRINCIPAL ACTION [FLAGS...]: resource policy statement, once.
# (get-policy fails while the function has no policy yet.)
capture POLICY "" "${aws_cli[@]}" lambda get-policy --function-name "$fn" --query Policy --output text \
  2>/dev/null || POLICY=""
add_permission() {
  local sid="$1" principal="$2" action="$3"
  shift 3
  if [[ "$POLICY" == *"\"Sid\":\"$sid\""* || "$POLICY" == *"\"Sid\": \"$sid\""* ]]; then
    log "permission $sid exists"
  else
    aws_run lambda add-permission --function-name "$fn" --statement-id "$sid" \
      --principal "$principal" --action "$action" "$@"
  fi
}

# --- Function URL ------------------------------------------------------------------------
create_url() { aws_run lambda create-function-url-config --function-name "$fn" --auth-type "$AWS_URL_AUTH"; }
update_url() { aws_run lambda update-function-url-config --function-name "$fn" --auth-type "$AWS_URL_AUTH"; }
upsert "${aws_cli[@]}" lambda get-function-url-config --function-name "$fn" -- create_url update_url
if [[ "$AWS_URL_AUTH" == NONE ]]; then
  add_permission function-url-public '*' lambda:InvokeFunctionUrl --function-url-auth-type NONE
fi
capture URL "https://URL_ID.lambda-url.$AWS_REGION.on.aws/" \
  "${aws_cli[@]}" lambda get-function-url-config --function-name "$fn" --query FunctionUrl --output text

# --- S3 trigger ----------------------------------------------------------------------------
location=()
if [[ "$AWS_REGION" != us-east-1 ]]; then
  location=(--create-bucket-configuration "LocationConstraint=$AWS_REGION")
fi
ensure "${aws_cli[@]}" s3api head-bucket --bucket "$AWS_S3_BUCKET" \
  -- "${aws_cli[@]}" s3api create-bucket --bucket "$AWS_S3_BUCKET" "${location[@]}"
add_permission s3-invoke s3.amazonaws.com lambda:InvokeFunction \
  --source-arn "arn:aws:s3:::$AWS_S3_BUCKET" --source-account "$ACCOUNT"
# Replaces the bucket's notification configuration as a whole (it is ours).
notification="{\"LambdaFunctionConfigurations\":[{\"Id\":\"$fn\",\"LambdaFunctionArn\":\"$FUNCTION_ARN\",\"Events\":[\"s3:ObjectCreated:*\"],\"Filter\":{\"Key\":{\"FilterRules\":[{\"Name\":\"prefix\",\"Value\":$(json_str "${AWS_S3_PREFIX:-}")}]}}}]}"
aws_run s3api put-bucket-notification-configuration --bucket "$AWS_S3_BUCKET" \
  --notification-configuration "$notification"

# --- SQS trigger, dead-letter queue -------------------------------------------------------
# AWS asks for a visibility timeout of at least six times the function timeout. The dead-
# letter queue keeps messages for the maximum 14 days.
ensure "${aws_cli[@]}" sqs get-queue-url --queue-name "$AWS_SQS_DEAD_LETTER_QUEUE" \
  -- "${aws_cli[@]}" sqs create-queue --queue-name "$AWS_SQS_DEAD_LETTER_QUEUE" \
  --attributes MessageRetentionPeriod=1209600
redrive="{\\\"deadLetterTargetArn\\\":\\\"$dlq_arn\\\",\\\"maxReceiveCount\\\":\\\"$AWS_SQS_MAX_RECEIVES\\\"}"
queue_attributes="{\"VisibilityTimeout\":\"$((AWS_TIMEOUT_S * 6))\",\"RedrivePolicy\":\"$redrive\"}"
ensure "${aws_cli[@]}" sqs get-queue-url --queue-name "$AWS_SQS_QUEUE" \
  -- "${aws_cli[@]}" sqs create-queue --queue-name "$AWS_SQS_QUEUE" --attributes "$queue_attributes"
capture QUEUE_URL "https://sqs.$AWS_REGION.amazonaws.com/$ACCOUNT/$AWS_SQS_QUEUE" \
  "${aws_cli[@]}" sqs get-queue-url --queue-name "$AWS_SQS_QUEUE" --query QueueUrl --output text
aws_run sqs set-queue-attributes --queue-url "$QUEUE_URL" --attributes "$queue_attributes"
# S3 invokes the function asynchronously: after AWS_ASYNC_RETRIES retries the event's record
# goes to the same dead-letter queue.
aws_run lambda put-function-event-invoke-config --function-name "$fn" \
  --maximum-retry-attempts "$AWS_ASYNC_RETRIES" \
  --destination-config "{\"OnFailure\":{\"Destination\":\"$dlq_arn\"}}"
capture MAPPING "" "${aws_cli[@]}" lambda list-event-source-mappings --function-name "$fn" \
  --event-source-arn "$queue_arn" --query 'EventSourceMappings[0].UUID' --output text
if [[ -n "$MAPPING" && "$MAPPING" != None ]]; then
  aws_run lambda update-event-source-mapping --uuid "$MAPPING" --batch-size "$AWS_SQS_BATCH_SIZE" \
    --function-response-types ReportBatchItemFailures
else
  aws_run lambda create-event-source-mapping --function-name "$fn" --event-source-arn "$queue_arn" \
    --batch-size "$AWS_SQS_BATCH_SIZE" --function-response-types ReportBatchItemFailures
fi

echo "lambda function: $FUNCTION_ARN"
echo "url: $URL"
echo "s3 trigger: s3://$AWS_S3_BUCKET/${AWS_S3_PREFIX:-} (object created)"
echo "sqs trigger: $queue_arn"
echo "dead letters: $dlq_arn (after $AWS_SQS_MAX_RECEIVES receives; S3 events after $AWS_ASYNC_RETRIES retries)"
