#!/usr/bin/env bash
## Usage: deploy/cloudrun.sh [--gpu] [--config FILE] [--dry-run] [--skip-build] [--help]
##
## Builds the container (deploy/Dockerfile: the same main.py under functions-framework),
## pushes it to Artifact Registry and deploys it as a Cloud Run service (create or update).
## Prints the service URL.
##
##   --gpu          one NVIDIA L4 (deploy/Dockerfile.gpu, onnxruntime-gpu for CUDA 12),
##                  no CPU throttling, EXECUTION_PROVIDERS=gpu, in GPU_REGION
##   --config FILE  deploy config (default: deploy/config.env, or $DEPLOY_CONFIG)
##   --dry-run      print the commands, run nothing
##   --skip-build   deploy the image already pushed for IMAGE_TAG
set -euo pipefail
SCRIPT_FLAGS=(--gpu)
# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup "$@"
require PROJECT REGION SERVICE_ACCOUNT MODEL_URI SERVICE_NAME

if has_flag --gpu; then
  require GPU_REGION GPU_SERVICE_NAME GPU_CPU GPU_MEMORY GPU_CONCURRENCY GPU_MIN_INSTANCES GPU_MAX_INSTANCES
  in_list "$GPU_REGION" "${L4_REGIONS[@]}" ||
    die "GPU_REGION=$GPU_REGION has no Cloud Run L4 GPUs; use one of: ${L4_REGIONS[*]}"
  ((${GPU_CPU%.*} >= 4)) || die "Cloud Run needs GPU_CPU >= 4 with a GPU"
  region="$GPU_REGION" service="$GPU_SERVICE_NAME" dockerfile="$DEPLOY_DIR/Dockerfile.gpu"
  sizing=(--cpu="$GPU_CPU" --memory="$GPU_MEMORY" --concurrency="$GPU_CONCURRENCY"
    --min-instances="$GPU_MIN_INSTANCES" --max-instances="$GPU_MAX_INSTANCES")
  zonal=--no-gpu-zonal-redundancy
  [[ "${GPU_ZONAL_REDUNDANCY:-false}" == true ]] && zonal=--gpu-zonal-redundancy
  # GPU instances must keep their CPU between requests (no throttling).
  platform=(--gpu=1 --gpu-type=nvidia-l4 "$zonal" --no-cpu-throttling)
  env_overrides=(EXECUTION_PROVIDERS=gpu)
else
  require RUN_CPU RUN_MEMORY RUN_CONCURRENCY RUN_MIN_INSTANCES RUN_MAX_INSTANCES
  # shellcheck disable=SC2153  # REGION comes from the config
  region="$REGION" service="$SERVICE_NAME" dockerfile="$DEPLOY_DIR/Dockerfile"
  sizing=(--cpu="$RUN_CPU" --memory="$RUN_MEMORY" --concurrency="$RUN_CONCURRENCY"
    --min-instances="$RUN_MIN_INSTANCES" --max-instances="$RUN_MAX_INSTANCES")
  platform=()
  env_overrides=()
fi
# Extra CPU while an instance starts: the model load is most of a cold start.
if [[ "${RUN_CPU_BOOST:-true}" == true ]]; then
  platform+=(--cpu-boost)
else
  platform+=(--no-cpu-boost)
fi
if [[ "${RUN_MOUNT_MODEL_BUCKET:-false}" == true ]]; then
  require MODEL_BUCKET
  # shellcheck disable=SC2054  # the commas belong to the flag value
  platform+=(--add-volume="name=models,type=cloud-storage,bucket=$MODEL_BUCKET,readonly=true"
    --add-volume-mount=volume=models,mount-path=/mnt/models)
fi

gcp_enable run.googleapis.com artifactregistry.googleapis.com
gcp_image "$service" "$dockerfile" "$region"

# No traffic until /readyz says the model is loaded; restart when /healthz stops answering.
run gcloud run deploy "$service" --image="$IMAGE" --project="$PROJECT" --region="$region" \
  --port=8080 --execution-environment=gen2 --timeout="${RUN_TIMEOUT:-300s}" \
  --service-account="$SERVICE_ACCOUNT" "$(gcp_auth_flag)" "${sizing[@]}" "${platform[@]}" \
  --startup-probe=httpGet.path=/readyz,httpGet.port=8080,periodSeconds=2,failureThreshold=90,timeoutSeconds=2 \
  --liveness-probe=httpGet.path=/healthz,httpGet.port=8080,periodSeconds=30 \
  --set-env-vars="$(gcloud_env "${env_overrides[@]}")"

capture URL "https://$service-PROJECT_HASH-uc.a.run.app" \
  gcloud run services describe "$service" --region="$region" --project="$PROJECT" \
  --format='value(status.url)'
echo "cloud run service: $service"
echo "url: $URL"
