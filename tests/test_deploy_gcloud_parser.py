"""The Pub/Sub commands deploy/functions.sh prints, parsed by the real gcloud CLI.

With CLOUDSDK_CONFIG pointing at an empty folder gcloud has no account: a command whose
flags parse stops at "You do not currently have an active account selected"; a wrong flag
or value stops earlier, with a usage error. Skipped where gcloud is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.deploy_fixtures.dry_run import run_script

NO_ACCOUNT = "You do not currently have an active account selected"


@pytest.mark.skipif(shutil.which("gcloud") is None, reason="the gcloud CLI is not installed")
def test_pubsub_commands_parse(tmp_path: Path) -> None:
    result = run_script("functions.sh", "--dry-run")
    assert result.returncode == 0, result.stderr
    commands = [a for a in result.commands() if a[:2] == ["gcloud", "pubsub"]]
    assert {tuple(a[2:4]) for a in commands} >= {
        ("subscriptions", "create"), ("subscriptions", "update"),
        ("topics", "add-iam-policy-binding"), ("subscriptions", "add-iam-policy-binding")}
    env = {"CLOUDSDK_CONFIG": str(tmp_path), "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
           "PATH": "/usr/bin:/bin"}
    argvs = commands + [["gcloud", "pubsub", "subscriptions", "update", "s", "--bogus=1"]]

    def parse(argv: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run([shutil.which("gcloud") or "gcloud", *argv[1:]], env=env,
                              capture_output=True, text=True, timeout=60)

    with ThreadPoolExecutor(4) as pool:  # each gcloud start is mostly its own imports
        for argv, proc in zip(argvs, pool.map(parse, argvs)):
            parsed = NO_ACCOUNT in proc.stderr
            assert parsed == ("--bogus=1" not in argv), (argv, proc.stderr[-600:])
