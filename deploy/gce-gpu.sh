#!/usr/bin/env bash
## Usage: deploy/gce-gpu.sh [--config FILE] [--dry-run] [--skip-build] [--help]
##
## Runs the GPU container (deploy/Dockerfile.gpu) on Compute Engine: a managed instance group
## of VM_COUNT GPU VMs (VM_MACHINE_TYPE + VM_ACCELERATOR, Container-Optimized OS), whose
## startup script (deploy/vm-startup.sh) installs the NVIDIA driver and starts the container;
## an HTTP health check on /readyz recreates a VM that stops being ready. Re-running rolls the
## group to a new instance template when the image or config changed. Prints the VMs' URLs.
##
##   --config FILE  deploy config (default: deploy/config.env, or $DEPLOY_CONFIG)
##   --dry-run      print the commands, run nothing
##   --skip-build   use the image already pushed for IMAGE_TAG
set -euo pipefail
# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup "$@"
require PROJECT SERVICE_ACCOUNT MODEL_URI GPU_SERVICE_NAME VM_NAME VM_ZONE VM_MACHINE_TYPE \
  VM_BOOT_DISK_SIZE VM_COUNT VM_PORT VM_NETWORK
vm_region="${VM_ZONE%-*}"
health_check="$VM_NAME-readyz"

gcp_enable compute.googleapis.com artifactregistry.googleapis.com
gcp_image "$GPU_SERVICE_NAME" "$DEPLOY_DIR/Dockerfile.gpu" "$vm_region"

# The container's environment travels as instance metadata (a file: values may hold commas).
env_file="$(mktemp)"
trap 'rm -f "$env_file"' EXIT
env_lines EXECUTION_PROVIDERS=gpu "PORT=$VM_PORT" >"$env_file"
if ((DRY_RUN)); then
  sed 's/^/# container-env: /' "$env_file"
fi
# Templates are immutable: name each by a hash of everything it holds.
template_hash="$(cat "$env_file" "$DEPLOY_DIR/vm-startup.sh" - <<<"$IMAGE $VM_MACHINE_TYPE ${VM_ACCELERATOR:-} $VM_BOOT_DISK_SIZE $SERVICE_ACCOUNT $VM_NETWORK" |
  sha256sum | cut -c1-8)"
template="$VM_NAME-$template_hash"

# Google's health checkers (and VM_ALLOW_FROM, if set) may reach the port.
ensure gcloud compute firewall-rules describe "$VM_NAME-health" --project="$PROJECT" \
  -- gcloud compute firewall-rules create "$VM_NAME-health" --project="$PROJECT" \
  --network="$VM_NETWORK" --direction=INGRESS --allow="tcp:$VM_PORT" \
  --source-ranges=35.191.0.0/16,130.211.0.0/22 --target-tags="$VM_NAME"
if [[ -n "${VM_ALLOW_FROM:-}" ]]; then
  ensure gcloud compute firewall-rules describe "$VM_NAME-serve" --project="$PROJECT" \
    -- gcloud compute firewall-rules create "$VM_NAME-serve" --project="$PROJECT" \
    --network="$VM_NETWORK" --direction=INGRESS --allow="tcp:$VM_PORT" \
    --source-ranges="$VM_ALLOW_FROM" --target-tags="$VM_NAME"
fi
ensure gcloud compute health-checks describe "$health_check" --project="$PROJECT" --global \
  -- gcloud compute health-checks create http "$health_check" --project="$PROJECT" --global \
  --port="$VM_PORT" --request-path=/readyz --check-interval=10s --timeout=5s \
  --healthy-threshold=2 --unhealthy-threshold=3

accelerator=()
if [[ -n "${VM_ACCELERATOR:-}" ]]; then
  accelerator=(--accelerator="$VM_ACCELERATOR")
fi
# GPU VMs cannot live-migrate: host maintenance stops them (TERMINATE), then they restart.
ensure gcloud compute instance-templates describe "$template" --project="$PROJECT" \
  -- gcloud compute instance-templates create "$template" --project="$PROJECT" \
  --machine-type="$VM_MACHINE_TYPE" "${accelerator[@]}" --maintenance-policy=TERMINATE \
  --image-family=cos-stable --image-project=cos-cloud --boot-disk-size="$VM_BOOT_DISK_SIZE" \
  --network="$VM_NETWORK" --tags="$VM_NAME" \
  --service-account="$SERVICE_ACCOUNT" --scopes=cloud-platform \
  --metadata="container-image=$IMAGE,container-port=$VM_PORT" \
  --metadata-from-file="startup-script=$DEPLOY_DIR/vm-startup.sh,container-env=$env_file"

# The first boot installs the driver and pulls the image: give it 10 minutes before autohealing.
create_group() {
  run gcloud compute instance-groups managed create "$VM_NAME" --project="$PROJECT" \
    --zone="$VM_ZONE" --template="$template" --size="$VM_COUNT" \
    --health-check="$health_check" --initial-delay=600
}
update_group() {
  run gcloud compute instance-groups managed update "$VM_NAME" --project="$PROJECT" \
    --zone="$VM_ZONE" --health-check="$health_check" --initial-delay=600
  run gcloud compute instance-groups managed resize "$VM_NAME" --project="$PROJECT" \
    --zone="$VM_ZONE" --size="$VM_COUNT"
  # No surge: a second GPU VM needs quota that is often not there.
  run gcloud compute instance-groups managed rolling-action start-update "$VM_NAME" \
    --project="$PROJECT" --zone="$VM_ZONE" --version=template="$template" \
    --max-surge=0 --max-unavailable=1
}
upsert gcloud compute instance-groups managed describe "$VM_NAME" --project="$PROJECT" --zone="$VM_ZONE" \
  -- create_group update_group

capture IPS "EXTERNAL_IP" \
  gcloud compute instances list --project="$PROJECT" --filter="name~^$VM_NAME-" \
  --format='value(networkInterfaces[0].accessConfigs[0].natIP)'
echo "managed instance group: $VM_NAME ($VM_ZONE, template $template)"
for ip in $IPS; do
  echo "url: http://$ip:$VM_PORT"
done
