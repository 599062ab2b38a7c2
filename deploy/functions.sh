#!/usr/bin/env bash
## Usage: deploy/functions.sh [--config FILE] [--dry-run] [--help]
##
## Deploys main.py to Cloud Functions (gen2) as three functions sharing one source:
##   SERVICE_NAME          HTTP      entry point predict           (POST /predict, /batch-predict, ...)
##   SERVICE_NAME-storage  storage   entry point on_storage_event  (object finalized in EVENT_BUCKET)
##   SERVICE_NAME-pubsub   HTTP      entry point on_pubsub_message, pushed the messages on
##                                   PUBSUB_TOPIC by the subscription PUBSUB_SUBSCRIPTION
## plus the event bucket, the topic, the IAM bindings the storage trigger needs, and the
## dead-letter topic PUBSUB_DEAD_LETTER_TOPIC: a message the function did not acknowledge
## after PUBSUB_MAX_DELIVERY_ATTEMPTS pushes is moved there (and held by its subscription
## PUBSUB_DEAD_LETTER_TOPIC-hold for 7 days, for a person to look at or replay).
## Re-running updates everything in place. Prints the HTTP function's URL.
##
##   --config FILE  deploy config (default: deploy/config.env, or $DEPLOY_CONFIG)
##   --dry-run      print the commands, run nothing
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup "$@"
require PROJECT REGION SERVICE_ACCOUNT MODEL_URI MODEL_BUCKET SERVICE_NAME EVENT_BUCKET \
  PUBSUB_TOPIC PUBSUB_SUBSCRIPTION PUBSUB_DEAD_LETTER_TOPIC PUBSUB_MAX_DELIVERY_ATTEMPTS FUNCTION_RUNTIME FUNCTION_MEMORY FUNCTION_CPU FUNCTION_CONCURRENCY \
  FUNCTION_MIN_INSTANCES FUNCTION_MAX_INSTANCES FUNCTION_TIMEOUT EVENT_TIMEOUT

gcp_enable cloudfunctions.googleapis.com run.googleapis.com cloudbuild.googleapis.com \
  artifactregistry.googleapis.com eventarc.googleapis.com pubsub.googleapis.com storage.googleapis.com

# The event sources. The bucket lives in REGION so the trigger can too.
ensure gcloud storage buckets describe "gs://$EVENT_BUCKET" --project="$PROJECT" \
  -- gcloud storage buckets create "gs://$EVENT_BUCKET" --project="$PROJECT" --location="$REGION" \
  --uniform-bucket-level-access
ensure gcloud pubsub topics describe "$PUBSUB_TOPIC" --project="$PROJECT" \
  -- gcloud pubsub topics create "$PUBSUB_TOPIC" --project="$PROJECT"
ensure gcloud pubsub topics describe "$PUBSUB_DEAD_LETTER_TOPIC" --project="$PROJECT" \
  -- gcloud pubsub topics create "$PUBSUB_DEAD_LETTER_TOPIC" --project="$PROJECT"
# A topic keeps nothing by itself: this subscription holds what is dead-lettered.
ensure gcloud pubsub subscriptions describe "$PUBSUB_DEAD_LETTER_TOPIC-hold" --project="$PROJECT" \
  -- gcloud pubsub subscriptions create "$PUBSUB_DEAD_LETTER_TOPIC-hold" --project="$PROJECT" \
  --topic="$PUBSUB_DEAD_LETTER_TOPIC" --message-retention-duration=7d

# IAM the storage trigger needs (https://cloud.google.com/functions/docs/calling/storage):
# the Cloud Storage service agent publishes to Pub/Sub, the trigger's identity receives
# Eventarc events and invokes the service, the Pub/Sub agent mints its tokens. Adding an
# existing binding is a no-op, so these are safe to repeat.
capture PROJECT_NUMBER "PROJECT_NUMBER" \
  gcloud projects describe "$PROJECT" --format='value(projectNumber)'
capture GCS_AGENT "service-$PROJECT_NUMBER@gs-project-accounts.iam.gserviceaccount.com" \
  gcloud storage service-agent --project="$PROJECT"
bind_project_role() {
  run gcloud projects add-iam-policy-binding "$PROJECT" --member="$1" --role="$2" \
    --condition=None --format=none
}
bind_project_role "serviceAccount:$GCS_AGENT" roles/pubsub.publisher
bind_project_role "serviceAccount:$SERVICE_ACCOUNT" roles/eventarc.eventReceiver
bind_project_role "serviceAccount:$SERVICE_ACCOUNT" roles/run.invoker
bind_project_role "serviceAccount:service-$PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com" \
  roles/iam.serviceAccountTokenCreator
# The function reads the model, and reads/writes the event bucket.
run gcloud storage buckets add-iam-policy-binding "gs://$MODEL_BUCKET" \
  --member="serviceAccount:$SERVICE_ACCOUNT" --role=roles/storage.objectViewer --format=none
run gcloud storage buckets add-iam-policy-binding "gs://$EVENT_BUCKET" \
  --member="serviceAccount:$SERVICE_ACCOUNT" --role=roles/storage.objectUser --format=none

# deploy_function NAME ENTRY_POINT TIMEOUT TRIGGER_FLAGS...: create or update one function.
deploy_function() {
  local name="$1" entry_point="$2" timeout="$3"
  shift 3
  # shellcheck disable=SC2119  # gcloud_env takes optional overrides; none here
  run gcloud functions deploy "$name" --gen2 --project="$PROJECT" --region="$REGION" \
    --runtime="$FUNCTION_RUNTIME" --source="$REPO_ROOT" --ignore-file=deploy/gcloudignore \
    --entry-point="$entry_point" \
    --memory="$FUNCTION_MEMORY" --cpu="$FUNCTION_CPU" --concurrency="$FUNCTION_CONCURRENCY" \
    --min-instances="$FUNCTION_MIN_INSTANCES" --max-instances="$FUNCTION_MAX_INSTANCES" \
    --timeout="$timeout" --run-service-account="$SERVICE_ACCOUNT" \
    --set-env-vars="$(gcloud_env)" "$@"
}

event_flags=(--no-allow-unauthenticated --trigger-location="$REGION" --trigger-service-account="$SERVICE_ACCOUNT")
if [[ "${RETRY_EVENTS:-false}" == true ]]; then
  event_flags+=(--retry)
fi

deploy_function "$SERVICE_NAME" predict "$FUNCTION_TIMEOUT" --trigger-http "$(gcp_auth_flag)"
deploy_function "$SERVICE_NAME-storage" on_storage_event "$EVENT_TIMEOUT" \
  --trigger-event-filters=type=google.cloud.storage.object.v1.finalized \
  --trigger-event-filters="bucket=$EVENT_BUCKET" "${event_flags[@]}"
# The Pub/Sub function is an HTTP function (functions-framework's CloudEvent converter
# refuses a message without data): our own push subscription delivers to it, with OIDC.
deploy_function "$SERVICE_NAME-pubsub" on_pubsub_message "$EVENT_TIMEOUT" \
  --trigger-http --no-allow-unauthenticated
capture PUBSUB_URL "https://$SERVICE_NAME-pubsub-PROJECT_HASH-uc.a.run.app" \
  gcloud functions describe "$SERVICE_NAME-pubsub" --region="$REGION" --project="$PROJECT" \
  --format='value(serviceConfig.uri)'
push_flags=(--project="$PROJECT" --push-endpoint="$PUBSUB_URL"
  --push-auth-service-account="$SERVICE_ACCOUNT" --ack-deadline="${EVENT_TIMEOUT%s}"
  --dead-letter-topic="$PUBSUB_DEAD_LETTER_TOPIC"
  --max-delivery-attempts="$PUBSUB_MAX_DELIVERY_ATTEMPTS" --min-retry-delay=10s
  --max-retry-delay=600s)
create_push() { run gcloud pubsub subscriptions create "$PUBSUB_SUBSCRIPTION" --topic="$PUBSUB_TOPIC" "${push_flags[@]}"; }
update_push() { run gcloud pubsub subscriptions update "$PUBSUB_SUBSCRIPTION" "${push_flags[@]}"; }
upsert gcloud pubsub subscriptions describe "$PUBSUB_SUBSCRIPTION" --project="$PROJECT" \
  -- create_push update_push
# Dead-lettering is done by the Pub/Sub service agent: it must publish to the dead-letter
# topic and acknowledge (subscribe) on the push subscription.
pubsub_agent="serviceAccount:service-$PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"
run gcloud pubsub topics add-iam-policy-binding "$PUBSUB_DEAD_LETTER_TOPIC" --project="$PROJECT" \
  --member="$pubsub_agent" --role=roles/pubsub.publisher --format=none
run gcloud pubsub subscriptions add-iam-policy-binding "$PUBSUB_SUBSCRIPTION" --project="$PROJECT" \
  --member="$pubsub_agent" --role=roles/pubsub.subscriber --format=none

capture URL "https://$REGION-$PROJECT.cloudfunctions.net/$SERVICE_NAME" \
  gcloud functions describe "$SERVICE_NAME" --region="$REGION" --project="$PROJECT" \
  --format='value(serviceConfig.uri)'
echo "http function: $URL"
echo "storage function: $SERVICE_NAME-storage (gs://$EVENT_BUCKET, object finalized)"
echo "pubsub function: $SERVICE_NAME-pubsub (topic $PUBSUB_TOPIC, push subscription $PUBSUB_SUBSCRIPTION)"
echo "dead letters: topic $PUBSUB_DEAD_LETTER_TOPIC, held by $PUBSUB_DEAD_LETTER_TOPIC-hold"
