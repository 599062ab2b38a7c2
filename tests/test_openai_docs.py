"""The OpenAI pages run as written: the README's Python example (openai SDK and LangChain,
the identity token as the API key) in the openai client venv against the production server
serving all-MiniLM-L6-v2, behind a stand-in for Cloud Run's front end that refuses a
request without that bearer token; and docs/openai.md's curl commands in process."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.client_venvs import client_bin
from tests.far_end import FarEnd
from tests.servers import ROOT
from tests.test_docs import README, run_curl, section, shell_commands

TOKEN = "eyJhbGciOiJSUzI1NiJ9.an-identity-token.signature"
UNAUTHORIZED = (401, [("content-type", "text/plain"), ("content-length", "12")], b"Unauthorized")


class CloudRunFront(FarEnd):
    """The platform's side of the call: a request whose Authorization is not ``Bearer
    TOKEN`` is a 401 that never reaches the function, as Cloud Run's IAM check answers."""

    def upstream_call(self, method: str, path: str, headers: dict[str, str],
                      body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization")
        if auth != f"Bearer {TOKEN}":
            return UNAUTHORIZED
        return super().upstream_call(method, path, headers, body)


def readme_example() -> str:
    (block,) = re.findall(r"```python\n(.*?)```", section(README, "## OpenAI-compatible "
                                                                  "embeddings"), re.S)
    return block


def test_readme_openai_example_runs_as_written(minilm_model: Path, serve) -> None:
    fn = serve({"MODEL_URI": str(minilm_model)}, timeout=120)
    front = CloudRunFront(fn.url)
    try:
        code = readme_example()
        env = {**os.environ, "FUNCTION_URL": front.url, "ID_TOKEN": TOKEN}
        done = subprocess.run([str(client_bin("openai")), "-c", code], env=env,
                              capture_output=True, text=True, timeout=180, cwd=ROOT)
        assert done.returncode == 0, done.stderr[-3000:]
        shown = re.findall(r"\)\s+# ([\d ]+)$", code, re.M)  # what the comments say it prints
        assert shown and done.stdout.splitlines() == shown, (done.stdout, shown)
        assert {status for _, _, status in front.requests} == {200}
        assert {path for _, path, _ in front.requests} == {"/v1/embeddings"}
        wrong = subprocess.run([str(client_bin("openai")), "-c", code],
                               env={**env, "ID_TOKEN": "expired"}, capture_output=True,
                               text=True, timeout=180, cwd=ROOT)
        assert wrong.returncode != 0 and "AuthenticationError" in wrong.stderr
    finally:
        front.shutdown()
        front.server_close()


def test_openai_page_curls_work(minilm_model: Path, app) -> None:
    fn = app({"MODEL_URI": str(minilm_model)})
    commands = [c for c in shell_commands((ROOT / "docs" / "openai.md").read_text())
                if "curl " in c]
    assert len(commands) == 3
    answers = [run_curl(fn, command) for command in commands]
    assert '"embedding":[0.03324158,0.0044060512,' in answers[0]
    assert '"usage":{"prompt_tokens":17,"total_tokens":17}' in answers[0]
    assert '"embedding":"YSgIPbdgkDsCr827uChG' in answers[1]
    assert '"data":[{"id":"minilm","object":"model"' in answers[2]
