#!/usr/bin/env bash
## Usage: deploy/batch-job.sh [--execute] [--config FILE] [--dry-run] [--skip-build] [--help]
##
## Deploys the sharded batch-scoring job (python -m functions.batch_job) as a Cloud Run Job
## from the same image as the Cloud Run service: JOB_TASKS tasks, JOB_PARALLELISM at a time;
## each task scores its shard (CLOUD_RUN_TASK_INDEX of CLOUD_RUN_TASK_COUNT). Create or update.
## Prints the job name.
##
##   --execute      run the job once after deploying it, and wait for it
##   --config FILE  deploy config (default: deploy/config.env, or $DEPLOY_CONFIG)
##   --dry-run      print the commands, run nothing
##   --skip-build   deploy the image already pushed for IMAGE_TAG
set -euo pipefail
SCRIPT_FLAGS=(--execute)
# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup "$@"
require PROJECT REGION SERVICE_ACCOUNT MODEL_URI SERVICE_NAME JOB_NAME JOB_TASKS JOB_PARALLELISM \
  JOB_TASK_TIMEOUT JOB_MAX_RETRIES JOB_CPU JOB_MEMORY
((JOB_PARALLELISM <= JOB_TASKS)) || die "JOB_PARALLELISM must not exceed JOB_TASKS"

gcp_enable run.googleapis.com artifactregistry.googleapis.com
gcp_image "$SERVICE_NAME" "$DEPLOY_DIR/Dockerfile" "$REGION"

run gcloud run jobs deploy "$JOB_NAME" --image="$IMAGE" --project="$PROJECT" --region="$REGION" \
  --tasks="$JOB_TASKS" --parallelism="$JOB_PARALLELISM" --task-timeout="$JOB_TASK_TIMEOUT" \
  --max-retries="$JOB_MAX_RETRIES" --cpu="$JOB_CPU" --memory="$JOB_MEMORY" \
  --service-account="$SERVICE_ACCOUNT" --command=python --args=-m,functions.batch_job \
  --set-env-vars="$(gcloud_env "${JOB_ENV_VARS[@]}")"

if has_flag --execute; then
  run gcloud run jobs execute "$JOB_NAME" --project="$PROJECT" --region="$REGION" --wait
fi
echo "cloud run job: $JOB_NAME ($JOB_TASKS tasks, $JOB_PARALLELISM in parallel, $REGION)"
