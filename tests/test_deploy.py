"""deploy/ scripts in --dry-run against the committed example config.

Every command a script would run is checked flag by flag against the documented CLI
(tests/deploy_fixtures/cli_flags.py); then the platform-specific settings are checked by value.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy_fixtures.cli_flags import check_command
from tests.deploy_fixtures.dry_run import (
    DEPLOY,
    ROOT,
    SCRIPTS,
    Result,
    config_with,
    flag_value,
    run_script,
)

VARIANTS = [
    ("functions.sh",),
    ("cloudrun.sh",),
    ("cloudrun.sh", "--gpu"),
    ("batch-job.sh", "--execute"),
    ("gce-gpu.sh",),
    ("aws-lambda.sh",),
]
# The other branch of every config switch in the example.
FLIPPED = {
    "ALLOW_UNAUTHENTICATED": "true",
    "RETRY_EVENTS": "false",
    "RUN_CPU_BOOST": "false",
    "RUN_MOUNT_MODEL_BUCKET": "true",
    "GPU_ZONAL_REDUNDANCY": "true",
    "VM_ACCELERATOR": "",
    "VM_MACHINE_TYPE": "g2-standard-8",
    "VM_ALLOW_FROM": "203.0.113.0/24",
    "AWS_URL_AUTH": "NONE",
    "AWS_REGION": "eu-west-1",
}


def dry_run(*args: str, config: Path | None = None) -> Result:
    result = run_script(args[0], *args[1:], "--dry-run", **({"config": config} if config else {}))
    assert result.returncode == 0, result.stderr
    return result


def only(result: Result, *prefix: str) -> list[str]:
    found = result.find(*prefix)
    assert len(found) == 1, (prefix, found)
    return found[0]


def env_of(argv: list[str]) -> dict[str, str]:
    """--set-env-vars as a dict (plain or ^|^-delimited)."""
    (value,) = flag_value(argv, "--set-env-vars")
    sep = ","
    if value.startswith("^"):
        sep, value = value[1], value[3:]
    return dict(item.split("=", 1) for item in value.split(sep))


@pytest.mark.parametrize("flipped", [False, True], ids=["example", "flipped"])
@pytest.mark.parametrize("args", VARIANTS, ids=" ".join)
def test_every_printed_command_uses_documented_flags(
    args: tuple[str, ...], flipped: bool, tmp_path: Path
) -> None:
    result = dry_run(*args, config=config_with(tmp_path, **FLIPPED) if flipped else None)
    commands = result.commands()
    assert len(commands) >= 3
    problems = [problem for argv in commands for problem in check_command(argv)]
    assert problems == []


def test_functions_gen2_http_storage_pubsub() -> None:
    result = dry_run("functions.sh")
    deploys = {argv[3]: argv for argv in result.find("gcloud", "functions", "deploy")}
    assert set(deploys) == {"onnx-predict", "onnx-predict-storage", "onnx-predict-pubsub"}
    for argv in deploys.values():
        assert "--gen2" in argv
        for flag, value in [
            ("--runtime", "python312"),
            ("--region", "us-central1"),
            ("--memory", "1Gi"),
            ("--cpu", "1"),
            ("--concurrency", "8"),
            ("--min-instances", "0"),
            ("--max-instances", "10"),
            ("--run-service-account", "onnx-predict@my-ml-project.iam.gserviceaccount.com"),
        ]:
            assert flag_value(argv, flag) == [value], flag
        assert env_of(argv)["MODEL_URI"] == "gs://my-ml-project-models/models/iris/1/model.onnx"
        assert env_of(argv)["LOG_LEVEL"] == "INFO"
    http, storage, pubsub = (
        deploys[n] for n in ("onnx-predict", "onnx-predict-storage", "onnx-predict-pubsub")
    )
    assert flag_value(http, "--entry-point") == ["predict"] and "--trigger-http" in http
    assert flag_value(http, "--timeout") == ["60s"]
    assert flag_value(storage, "--entry-point") == ["on_storage_event"]
    assert flag_value(storage, "--trigger-event-filters") == [
        "type=google.cloud.storage.object.v1.finalized",
        "bucket=my-ml-project-inbox",
    ]
    assert flag_value(pubsub, "--entry-point") == ["on_pubsub_message"]
    assert "--trigger-http" in pubsub and "--no-allow-unauthenticated" in pubsub
    assert "--retry" in storage and flag_value(storage, "--timeout") == ["300s"]
    assert flag_value(pubsub, "--timeout") == ["300s"]
    # The storage trigger's IAM: GCS agent publishes, the trigger identity receives events.
    roles = {
        (flag_value(a, "--member")[0], flag_value(a, "--role")[0])
        for a in result.find("gcloud", "projects", "add-iam-policy-binding")
    }
    assert (
        "serviceAccount:service-PROJECT_NUMBER@gs-project-accounts.iam.gserviceaccount.com",
        "roles/pubsub.publisher",
    ) in roles
    assert (
        "serviceAccount:onnx-predict@my-ml-project.iam.gserviceaccount.com",
        "roles/eventarc.eventReceiver",
    ) in roles
    # Things that are not create-or-update are checked before they are created.
    commands = [" ".join(a[:4]) for a in result.commands()]
    assert commands.index("gcloud pubsub topics describe") + 1 == commands.index(
        "gcloud pubsub topics create"
    )
    assert "http function: https://" in result.stdout


def test_pubsub_push_subscription_dead_letters() -> None:
    result = dry_run("functions.sh")
    for verb in ("create", "update"):  # create when missing, update in place otherwise
        push = only(result, "gcloud", "pubsub", "subscriptions", verb, "onnx-predict-requests-push")
        assert flag_value(push, "--dead-letter-topic") == ["onnx-predict-requests-dead-letter"]
        assert flag_value(push, "--max-delivery-attempts") == ["5"]
        assert flag_value(push, "--ack-deadline") == ["300"]
        assert flag_value(push, "--push-auth-service-account") == [
            "onnx-predict@my-ml-project.iam.gserviceaccount.com"]
        assert flag_value(push, "--push-endpoint")[0].startswith("https://onnx-predict-pubsub")
    assert flag_value(only(result, "gcloud", "pubsub", "subscriptions", "create",
                           "onnx-predict-requests-push"), "--topic") == ["onnx-predict-requests"]
    hold = only(result, "gcloud", "pubsub", "subscriptions", "create",
                "onnx-predict-requests-dead-letter-hold")
    assert flag_value(hold, "--topic") == ["onnx-predict-requests-dead-letter"]
    agent = "serviceAccount:service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"
    grants = {(a[2], flag_value(a, "--role")[0]) for a in result.find("gcloud", "pubsub")
              if "add-iam-policy-binding" in a and flag_value(a, "--member") == [agent]}
    assert grants == {("topics", "roles/pubsub.publisher"),
                      ("subscriptions", "roles/pubsub.subscriber")}


def test_cloud_run_serves_the_same_image_it_builds() -> None:
    result = dry_run("cloudrun.sh")
    build = only(result, "docker", "build")
    assert flag_value(build, "--file") == [str(DEPLOY / "Dockerfile")] and build[-1] == str(ROOT)
    (image,) = flag_value(build, "--tag")
    assert image == "us-central1-docker.pkg.dev/my-ml-project/onnx-serving/onnx-predict:test"
    assert only(result, "docker", "push")[-1] == image
    deploy = only(result, "gcloud", "run", "deploy")
    assert flag_value(deploy, "--image") == [image]
    for flag, value in [
        ("--concurrency", "32"),
        ("--cpu", "2"),
        ("--memory", "2Gi"),
        ("--min-instances", "0"),
        ("--max-instances", "20"),
    ]:
        assert flag_value(deploy, flag) == [value], flag
    assert "--cpu-boost" in deploy and "--no-allow-unauthenticated" in deploy
    assert "httpGet.path=/readyz" in flag_value(deploy, "--startup-probe")[0]
    assert env_of(deploy)["EXECUTION_PROVIDERS"] == "cpu"
    assert "url: https://" in result.stdout


def test_cloud_run_gpu_is_one_l4_without_cpu_throttling() -> None:
    result = dry_run("cloudrun.sh", "--gpu")
    assert flag_value(only(result, "docker", "build"), "--file") == [str(DEPLOY / "Dockerfile.gpu")]
    deploy = only(result, "gcloud", "run", "deploy")
    assert deploy[3] == "onnx-predict-gpu"
    assert flag_value(deploy, "--gpu") == ["1"] and flag_value(deploy, "--gpu-type") == [
        "nvidia-l4"
    ]
    assert "--no-cpu-throttling" in deploy
    assert flag_value(deploy, "--region") == ["us-central1"]
    assert int(flag_value(deploy, "--cpu")[0]) >= 4 and flag_value(deploy, "--memory") == ["16Gi"]
    assert env_of(deploy)["EXECUTION_PROVIDERS"] == "gpu"


def test_gpu_region_without_l4_is_refused(tmp_path: Path) -> None:
    result = run_script(
        "cloudrun.sh", "--gpu", "--dry-run", config=config_with(tmp_path, GPU_REGION="us-west1")
    )
    assert result.returncode != 0
    assert "us-west1" in result.stderr and "europe-west4" in result.stderr
    assert result.commands() == []


def test_batch_job_is_sharded_with_tasks_and_parallelism() -> None:
    result = dry_run("batch-job.sh", "--execute")
    deploy = only(result, "gcloud", "run", "jobs", "deploy")
    assert deploy[4] == "onnx-batch-score"
    assert flag_value(deploy, "--tasks") == ["10"] and flag_value(deploy, "--parallelism") == ["5"]
    assert flag_value(deploy, "--command") == ["python"]
    assert flag_value(deploy, "--args") == ["-m,functions.batch_job"]
    assert env_of(deploy)["BATCH_OUTPUT_URI"] == "gs://my-ml-project-models/predictions/"
    assert "--wait" in only(result, "gcloud", "run", "jobs", "execute")


def test_gpu_vm_template_group_and_health_check() -> None:
    result = dry_run("gce-gpu.sh")
    template = only(result, "gcloud", "compute", "instance-templates", "create")
    assert flag_value(template, "--maintenance-policy") == ["TERMINATE"]
    assert flag_value(template, "--accelerator") == ["type=nvidia-tesla-t4,count=1"]
    assert flag_value(template, "--machine-type") == ["n1-standard-8"]
    (files,) = flag_value(template, "--metadata-from-file")
    assert f"startup-script={DEPLOY / 'vm-startup.sh'}" in files.split(",")
    assert (
        "container-image=us-central1-docker.pkg.dev/my-ml-project/onnx-serving/onnx-predict-gpu:test"
        in flag_value(template, "--metadata")[0]
    )
    check = only(result, "gcloud", "compute", "health-checks", "create", "http")
    assert flag_value(check, "--request-path") == ["/readyz"]
    group = only(result, "gcloud", "compute", "instance-groups", "managed", "create")
    assert flag_value(group, "--health-check") == [check[5]]
    assert flag_value(group, "--template") == [template[4]]
    assert "# container-env: EXECUTION_PROVIDERS=gpu" in result.stdout


def test_aws_lambda_image_function_url_and_triggers() -> None:
    result = dry_run("aws-lambda.sh")
    create = only(result, "aws", "--region", "us-east-1", "lambda", "create-function")
    assert flag_value(create, "--package-type") == ["Image"]
    assert flag_value(create, "--code") == [
        "ImageUri=123456789012.dkr.ecr.us-east-1.amazonaws.com/onnx-predict:test"
    ]
    assert (
        '"MODEL_URI":"s3://my-ml-project-models/models/iris/1/model.onnx"'
        in flag_value(create, "--environment")[0]
    )
    assert result.find("aws", "--region", "us-east-1", "lambda", "create-function-url-config")
    assert result.find("aws", "--region", "us-east-1", "lambda", "create-event-source-mapping")
    assert result.find(
        "aws", "--region", "us-east-1", "s3api", "put-bucket-notification-configuration"
    )


def test_env_values_with_commas_use_gcloud_delimiter_syntax(tmp_path: Path) -> None:
    config = config_with(tmp_path)
    config.write_text(config.read_text() + 'ENV_VARS+=("FEATURE_COLUMNS=a,b,c")\n')
    deploy = only(dry_run("cloudrun.sh", config=config), "gcloud", "run", "deploy")
    (value,) = flag_value(deploy, "--set-env-vars")
    assert value.startswith("^|^")
    assert env_of(deploy)["FEATURE_COLUMNS"] == "a,b,c"


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_are_strict_and_explain_themselves(script: str) -> None:
    text = (DEPLOY / script).read_text()
    assert "set -euo pipefail" in text and 'source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"' in text
    shown = subprocess.run(["bash", str(DEPLOY / script), "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and shown.stdout.startswith("Usage: deploy/" + script)
    assert "--dry-run" in shown.stdout
    bogus = run_script(script, "--bogus", "--dry-run")
    assert bogus.returncode != 0
    assert "unknown option: --bogus" in bogus.stderr  # refused for that reason, not another
    missing = run_script(script, "--dry-run", config=Path("/nonexistent/config.env"))
    assert missing.returncode != 0 and "config not found" in missing.stderr


def test_shellcheck_clean() -> None:
    shellcheck = Path(sys.executable).parent / "shellcheck"
    files = sorted(str(p.relative_to(ROOT)) for p in DEPLOY.glob("*.sh")) + [
        "deploy/config.example.env"
    ]
    proc = subprocess.run(
        [str(shellcheck), "--external-sources", *files], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==(\S+)", line.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(3)
    return pins


def test_requirements_pin_each_package_once() -> None:
    seen: dict[str, tuple[str, str]] = {}
    for path in sorted(ROOT.glob("requirements*.txt")):
        for name, version in _pins(path).items():
            if name in seen:
                assert seen[name][1] == version, f"{name}: {seen[name]} vs {path.name}=={version}"
            seen[name] = (path.name, version)
    gpu = _pins(ROOT / "requirements-gpu.txt")
    assert "onnxruntime" not in gpu and gpu["onnxruntime-gpu"].startswith("1.26.")
    assert "-r requirements.txt" in (ROOT / "requirements-aws.txt").read_text()
    assert {"mangum", "boto3"} <= set(_pins(ROOT / "requirements-aws.txt"))
