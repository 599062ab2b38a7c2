"""Turning tracing on as the README shows it: its ``ENV_VARS`` line in deploy/config.env
makes the Cloud Run and Lambda scripts build the image with requirements-tracing.txt
(``--build-arg TRACING=1``) and deploy with the OTEL_* variables; without it, no build
argument (the base image stays as small as before). Scripts run in --dry-run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.deploy_fixtures.dry_run import EXAMPLE_CONFIG, ROOT, flag_value, run_script


def readme_line() -> str:
    """The config line of the README's "Traces and logs" section."""
    text = (ROOT / "README.md").read_text().split("\n## Traces and logs\n", 1)[1]
    [line] = [x for x in text.splitlines() if x.startswith("ENV_VARS=(")]
    return line


def builds(script: str, config: Path) -> list[list[str]]:
    result = run_script(script, "--dry-run", config=config)
    assert result.returncode == 0, result.stderr
    return result.find("docker", "build")


def deployed_env(commands: list[list[str]]) -> dict[str, str]:
    """The environment a deploy command sets: gcloud's --set-env-vars, or the JSON of
    Lambda's --environment (the last command that sets one)."""
    env: dict[str, str] = {}
    for argv in commands:
        for value in flag_value(argv, "--set-env-vars"):
            sep = value[1] if value.startswith("^") else ","
            env = dict(item.split("=", 1) for item in value.lstrip("^|").split(sep))
        for value in flag_value(argv, "--environment"):
            env = json.loads(value)["Variables"]
    return env


@pytest.mark.parametrize("script", ["cloudrun.sh", "aws-lambda.sh"])
def test_the_readme_line_builds_the_image_with_tracing(script: str, tmp_path: Path) -> None:
    config = tmp_path / "config.env"
    config.write_text(EXAMPLE_CONFIG.read_text() + "\n" + readme_line() + "\n")
    [build] = builds(script, config)
    assert flag_value(build, "--build-arg") == ["TRACING=1"]
    env = deployed_env(run_script(script, "--dry-run", config=config).commands())
    assert env["OTEL_TRACES_EXPORTER"] == "otlp"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://localhost:4318"
    [untraced] = builds(script, EXAMPLE_CONFIG)
    assert flag_value(untraced, "--build-arg") == []


@pytest.mark.parametrize(("dockerfile", "install"), [
    ("Dockerfile", 'if [ -n "$TRACING" ]; then'),  # a second install into site-packages
    ("Dockerfile.lambda", "${TRACING:+-r requirements-tracing.txt}"),  # the one --target
])
def test_the_images_install_the_tracing_requirements_only_when_asked(dockerfile: str,
                                                                     install: str) -> None:
    text = (ROOT / "deploy" / dockerfile).read_text()
    assert "ARG TRACING=\n" in text and install in text
    assert "opentelemetry-sdk" not in (ROOT / "requirements.txt").read_text()
    for value, added in (("", False), ("1", True)):  # the shell expansion the RUN relies on
        out = subprocess.run(["sh", "-c", 'echo "x ${TRACING:+-r requirements-tracing.txt}"'],
                             env={"TRACING": value}, capture_output=True, text=True, check=True)
        assert ("requirements-tracing.txt" in out.stdout) is added


def test_the_traced_lambda_image_resolves() -> None:
    """The Lambda image's one install with TRACING=1, resolved by pip for the image's
    Python: the SDK and the OTLP/HTTP exporter beside everything requirements-aws.txt pins."""
    from tests.deploy_fixtures.image_layers import resolved

    got = resolved(ROOT / "requirements-aws.txt", ROOT / "requirements-tracing.txt")
    assert "opentelemetry-sdk-1.45.2" in got and "opentelemetry-exporter-otlp-proto-http-" in got
    assert "mangum-0.22.0" in got and "opentelemetry-api-1.45.2" in got
