# shellcheck shell=bash
# Shared by every deploy script (sourced, never executed): argument parsing, config loading,
# run-or-print, create-if-missing, and the environment-variable list every platform gets.
#
# Contract for a script:  SCRIPT_FLAGS=(...); source lib.sh; setup "$@"; require ...; run / ensure
# In --dry-run every command that would run is printed to stdout as one shell-quoted line
# starting with "+ " (read back with shlex.split), and nothing runs. Otherwise each command is
# echoed to stderr before it runs (its output goes to stderr too), and stdout carries only
# what the script made (URL or name).

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DEPLOY_DIR/.." && pwd)"
CONFIG="${DEPLOY_CONFIG:-$DEPLOY_DIR/config.env}"
DRY_RUN=0
SKIP_BUILD=0
EXTRA_ARGS=()
declare -a SCRIPT_FLAGS # the script's own options, declared before sourcing this file
ENV_VARS=()
# shellcheck disable=SC2034  # set by the config, read by scripts
JOB_ENV_VARS=()
# Regions where Cloud Run offers NVIDIA L4 GPUs (asia-south1 by invitation).
# https://cloud.google.com/run/docs/configuring/services/gpu-zonal-redundancy
# shellcheck disable=SC2034
L4_REGIONS=(us-central1 europe-west1 europe-west4 asia-southeast1 asia-south1)

die() { echo "error: $*" >&2; exit 1; }
log() { echo "==> $*" >&2; }

# The script's help: its leading comment lines that start with "##".
usage() { sed -n 's/^## \{0,1\}//p' "$0"; }

# Options every script takes; anything else is left in EXTRA_ARGS for the script to read.
parse_args() {
  while (($#)); do
    case "$1" in
      -h | --help) usage; exit 0 ;;
      -n | --dry-run) DRY_RUN=1 ;;
      -c | --config) CONFIG="${2:?--config needs a file}"; shift ;;
      --config=*) CONFIG="${1#*=}" ;;
      --skip-build) SKIP_BUILD=1 ;;
      *) EXTRA_ARGS+=("$1") ;;
    esac
    shift
  done
}

# setup "$@": the common options, the script's own (declared in SCRIPT_FLAGS), the config.
setup() {
  parse_args "$@"
  local arg
  for arg in "${EXTRA_ARGS[@]}"; do
    in_list "$arg" "${SCRIPT_FLAGS[@]}" || die "unknown option: $arg (see --help)"
  done
  load_config
}

# has_flag FLAG: the script's own FLAG was given.
has_flag() {
  in_list "$1" "${EXTRA_ARGS[@]}"
}

load_config() {
  [[ -f "$CONFIG" ]] || die "config not found: $CONFIG (copy deploy/config.example.env, or pass --config)"
  # shellcheck source=deploy/config.example.env
  source "$CONFIG"
  IMAGE_TAG="${IMAGE_TAG:-$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || date +%Y%m%d%H%M%S)}"
}

# require VAR...: each must be set and non-empty in the config.
require() {
  local var
  for var in "$@"; do
    [[ -n "${!var:-}" ]] || die "$var is not set in $CONFIG"
  done
}

# Print a command as one shell-quoted line.
show() {
  printf '+'
  printf ' %q' "$@"
  printf '\n'
}

# run CMD...: print it (dry-run) or echo it to stderr and run it.
run() {
  if ((DRY_RUN)); then
    show "$@"
  else
    show "$@" >&2
    "$@" >&2
  fi
}

# capture VAR PLACEHOLDER CMD...: VAR = CMD's stdout; in dry-run print CMD, VAR = PLACEHOLDER.
capture() {
  local -n _capture_into="$1"
  local placeholder="$2"
  shift 2
  if ((DRY_RUN)); then
    show "$@"
    _capture_into="$placeholder"
  else
    show "$@" >&2
    _capture_into="$("$@")"
  fi
}

# split_check CHECK... -- REST...: CHECK_CMD=(CHECK...), REST_ARGS=(REST...).
split_check() {
  CHECK_CMD=()
  while (($#)) && [[ "$1" != "--" ]]; do
    CHECK_CMD+=("$1")
    shift
  done
  REST_ARGS=("${@:2}")
}

# ensure CHECK... -- CREATE...: run CREATE only when CHECK fails (the thing does not exist).
# In dry-run both are printed: the check, then what would create the thing if it is missing.
ensure() {
  split_check "$@"
  if ((DRY_RUN)); then
    show "${CHECK_CMD[@]}"
    run "${REST_ARGS[@]}"
  elif "${CHECK_CMD[@]}" >/dev/null 2>&1; then
    log "exists: ${CHECK_CMD[*]}"
  else
    run "${REST_ARGS[@]}"
  fi
}

# upsert CHECK... -- CREATE_FN UPDATE_FN: call UPDATE_FN when CHECK succeeds (the thing exists),
# else CREATE_FN. In dry-run the check is printed, then both paths, each under a comment.
upsert() {
  split_check "$@"
  local create="${REST_ARGS[0]}" update="${REST_ARGS[1]}"
  if ((DRY_RUN)); then
    show "${CHECK_CMD[@]}"
    echo "# if missing:"
    "$create"
    echo "# if it exists:"
    "$update"
  elif "${CHECK_CMD[@]}" >/dev/null 2>&1; then
    log "exists, updating: ${CHECK_CMD[*]}"
    "$update"
  else
    "$create"
  fi
}

# The function's environment as KEY=VALUE lines: MODEL_URI, the config's ENV_VARS, then the
# arguments (overrides such as EXECUTION_PROVIDERS=gpu). A later KEY replaces an earlier one.
env_lines() {
  local -A seen=()
  local -a order=()
  local item key
  for item in "MODEL_URI=$MODEL_URI" "${ENV_VARS[@]}" "$@"; do
    [[ "$item" == *=* ]] || die "ENV_VARS entry is not KEY=VALUE: $item"
    key="${item%%=*}"
    [[ -n "${seen[$key]+x}" ]] || order+=("$key")
    seen[$key]="${item#*=}"
  done
  for key in "${order[@]}"; do
    printf '%s=%s\n' "$key" "${seen[$key]}"
  done
}

# gcloud's --set-env-vars value; switches to the ^|^ delimiter when a value holds a comma.
gcloud_env() {
  local lines joined
  lines="$(env_lines "$@")"
  if [[ "$lines" == *,* ]]; then
    joined="^|^${lines//$'\n'/|}"
  else
    joined="${lines//$'\n'/,}"
  fi
  printf '%s' "$joined"
}

# Quote a string for JSON.
json_str() {
  local s="$1"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  s="${s//$'\t'/\\t}"
  s="${s//$'\n'/\\n}"
  printf '"%s"' "$s"
}

# --- images -------------------------------------------------------------------------------

# build_image DOCKERFILE IMAGE: docker build + push, unless --skip-build.
build_image() {
  if ((SKIP_BUILD)); then
    log "--skip-build: using $2 as it is in the registry"
    return 0
  fi
  local tracing=()
  # OpenTelemetry on in the config: the image installs requirements-tracing.txt too.
  if [[ " ${ENV_VARS[*]} " =~ \ OTEL_TRACES_EXPORTER=(otlp|console)\  ]]; then
    tracing=(--build-arg TRACING=1)
  fi
  run docker build --file "$1" "${tracing[@]}" --tag "$2" "$REPO_ROOT"
  run docker push "$2"
}

# --- Google Cloud -------------------------------------------------------------------------

gcp_enable() {
  run gcloud services enable "$@" --project="$PROJECT"
}

# Artifact Registry repository in REGION; sets IMAGE_BASE to its docker path.
gcp_registry() {
  local region="$1"
  require AR_REPOSITORY
  ensure gcloud artifacts repositories describe "$AR_REPOSITORY" --location="$region" --project="$PROJECT" \
    -- gcloud artifacts repositories create "$AR_REPOSITORY" --repository-format=docker \
    --location="$region" --project="$PROJECT" --description="ONNX serving images"
  IMAGE_BASE="$region-docker.pkg.dev/$PROJECT/$AR_REPOSITORY"
  if ((!SKIP_BUILD)); then
    run gcloud auth configure-docker "$region-docker.pkg.dev" --quiet
  fi
}

# gcp_image NAME DOCKERFILE REGION: registry, build and push; sets IMAGE.
gcp_image() {
  gcp_registry "$3"
  IMAGE="$IMAGE_BASE/$1:$IMAGE_TAG"
  build_image "$2" "$IMAGE"
}

# --allow-unauthenticated or --no-allow-unauthenticated from the config.
gcp_auth_flag() {
  if [[ "${ALLOW_UNAUTHENTICATED:-false}" == true ]]; then
    printf '%s' --allow-unauthenticated
  else
    printf '%s' --no-allow-unauthenticated
  fi
}

# in_list WORD LIST...: WORD is one of LIST.
in_list() {
  local word="$1" item
  shift
  for item in "$@"; do
    [[ "$item" == "$word" ]] && return 0
  done
  return 1
}
