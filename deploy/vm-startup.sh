#!/bin/bash
# Startup script of the GPU VM (Container-Optimized OS), set by deploy/gce-gpu.sh through the
# instance template's metadata. On every boot: install the NVIDIA driver, start the serving
# container (deploy/Dockerfile.gpu image) with the GPU, and wait until /readyz answers 200.
# Reads instance metadata: container-image, container-port, container-env (KEY=VALUE lines).
set -euo pipefail

metadata() {
  curl -fsS -H 'Metadata-Flavor: Google' \
    "http://metadata.google.internal/computeMetadata/v1/instance/attributes/$1"
}

IMAGE="$(metadata container-image)"
PORT="$(metadata container-port || echo 8080)"
STATE=/var/lib/onnx-predict            # /var is the writable, persistent partition on COS
mkdir -p "$STATE/trt-cache"
metadata container-env >"$STATE/container.env" || : >"$STATE/container.env"

# Driver from COS's own extension (a CUDA 12 capable branch), exposed to containers.
cos-extensions install gpu -- --version=latest
mount --bind /var/lib/nvidia /var/lib/nvidia
mount -o remount,exec /var/lib/nvidia
/var/lib/nvidia/bin/nvidia-smi

# Pull from Artifact Registry as the VM's service account.
export HOME="$STATE"
docker-credential-gcr configure-docker --registries="${IMAGE%%/*}"
docker pull "$IMAGE"
docker rm -f onnx-predict >/dev/null 2>&1 || true
# The TensorRT engine cache lives on the VM's disk, so a restart does not rebuild engines.
docker run --detach --name onnx-predict --restart=always \
  --publish "$PORT:$PORT" --env "PORT=$PORT" --env-file "$STATE/container.env" \
  --env TRT_CACHE_DIR=/var/cache/trt --volume "$STATE/trt-cache:/var/cache/trt" \
  --volume /var/lib/nvidia/lib64:/usr/local/nvidia/lib64 \
  --volume /var/lib/nvidia/bin:/usr/local/nvidia/bin \
  --device /dev/nvidia0:/dev/nvidia0 --device /dev/nvidia-uvm:/dev/nvidia-uvm \
  --device /dev/nvidiactl:/dev/nvidiactl \
  "$IMAGE"

# Report readiness in the serial console; the managed group's health check does the rest.
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$PORT/readyz"; then
    echo "onnx-predict ready on port $PORT"
    exit 0
  fi
  sleep 5
done
echo "onnx-predict not ready after 10 minutes" >&2
docker logs --tail 100 onnx-predict >&2
exit 1
