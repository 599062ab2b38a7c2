"""The README and docs/ document what the code does: every setting, every route, and every
command they show is run (curl against the real app in process, model_export through its
real parser) or named below with the test that covers it."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from functions.config.settings_doc import splice
from tests.inprocess import InProcess
from tests.servers import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]

COVERED_ELSEWHERE = {
    "make ": "the Makefile's targets: CI runs `make test`, which runs `make lint`",
    ".venv/bin/python -m benchmarks.": "the benchmarks themselves (benchmarks/)",
    "M=$(python -c": "a shell variable for the model_export commands after it",
    "ENV_VARS=(": "deploy/config.env lines: tests/test_tracing_deploy.py deploys the README's",
}
"""Commands the docs show that this test does not run, by prefix, and what runs them."""


def shell_commands(text: str) -> list[str]:
    """Every command in the ```sh / ```bash blocks of ``text``: continuation lines joined,
    quoted arguments that span lines kept whole, comment lines dropped."""
    commands = []
    for block in re.findall(r"```(?:sh|bash)\n(.*?)```", text, re.S):
        current = ""
        for line in block.splitlines():
            if not current and (not line.strip() or line.lstrip().startswith("#")):
                continue
            line = line.rstrip()
            if line.endswith("\\"):
                current += line[:-1] + " "
                continue
            current += line
            try:
                shlex.split(current, comments=True)
            except ValueError:  # an unterminated quote: the argument goes on
                current += "\n"
                continue
            commands.append(current.strip())
            current = ""
    return commands


def section(path: Path, title: str) -> str:
    """The text under the heading ``title`` of ``path``, up to the next heading of its level."""
    level, _, _ = title.partition(" ")
    return path.read_text().split(f"\n{title}\n", 1)[1].split(f"\n{level} ", 1)[0]


def curl_request(command: str) -> tuple[str, str, dict[str, str], bytes | None]:
    """(method, path, headers, body) that ``command`` (``curl ...``, or a command piped
    into it) sends, as curl sends it: ``-d`` without a content type is form-encoded."""
    tokens = shlex.split(command, comments=True)
    stdin = None
    if "|" in tokens:
        cut = tokens.index("|")
        stdin = subprocess.run(tokens[:cut], capture_output=True, check=True, timeout=60).stdout
        tokens = tokens[cut + 1:]
    assert tokens[0] == "curl", command
    headers: dict[str, str] = {}
    body: bytes | None = None
    url = None
    args = iter(tokens[1:])
    for arg in args:
        if arg == "-H":
            name, _, value = next(args).partition(":")
            headers[name.strip().lower()] = value.strip()
        elif arg in ("-d", "--data", "--data-binary"):
            data = next(args)
            body = stdin if data == "@-" else data.encode()
        elif arg.startswith("-"):
            assert arg in ("-s", "-sf", "-f"), f"{arg} in {command}"
        else:
            url = arg
    assert url and url.startswith("localhost:8080/"), command
    if body is not None:
        headers.setdefault("content-type", "application/x-www-form-urlencoded")
    return ("POST" if body is not None else "GET", url.removeprefix("localhost:8080"),
            headers, body)


def run_curl(app: InProcess, command: str) -> str:
    """``command``'s request through the app in process; its answer must be a 2xx."""
    method, path, headers, body = curl_request(command)
    resp = app.request(method, path, headers=headers, content=body)
    assert resp.status_code < 300, (command, resp.status_code, resp.text)
    assert resp.text.strip(), command
    return resp.text


def test_settings_table_is_current() -> None:
    text = (ROOT / "docs" / "settings.md").read_text()
    assert splice(text) == text, "run: python -m functions.config.settings_doc --write"


def test_readme_is_a_short_quickstart_that_links_every_page() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    for page in DOCS:
        assert f"(docs/{page.name})" in text, page.name
    for route in ("/predict", "/batch-predict", "/healthz", "/readyz", "/model", "/metrics",
                  "/v2/models/iris/infer"):
        assert f"localhost:8080{route}" in text, route


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of ``page``."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", page.read_text(), re.M)}


def test_links_between_pages_resolve() -> None:
    for page in PAGES:
        for target, anchor in re.findall(r"\]\(([^)#:]*\.(?:md|png)|)(?:#([^)]*))?\)",
                                         page.read_text()):
            linked = (page.parent / target) if target else page
            assert linked.is_file(), f"{page.name} links {target}"
            assert not anchor or anchor in anchors(linked), f"{page.name} links {target}#{anchor}"


def demo_curls() -> list[str]:
    """The curl commands meant for the bundled demo model: README's "Calling it" block and
    the Open Inference Protocol page."""
    commands = shell_commands(section(README, "## Calling it"))
    commands += shell_commands((ROOT / "docs" / "open_inference.md").read_text())
    return [c for c in commands if "curl " in c]


def test_demo_curl_examples_work(demo_app: InProcess) -> None:
    commands = demo_curls()
    assert len(commands) >= 11
    for command in commands:
        run_curl(demo_app, command)


def test_a_readme_curl_through_curl_itself(demo_function) -> None:
    """Smoke test over a socket: the first README example run by curl against the served
    function, so the in-process reading of curl's arguments cannot drift from curl."""
    import shutil

    assert shutil.which("curl"), "curl is needed to check the README examples"
    command = demo_curls()[0].replace("curl -s localhost:8080", f"curl -sf {demo_function.url}")
    out = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=30,
                         check=False)
    assert out.returncode == 0 and '"predictions"' in out.stdout, (command, out)


KIND_MODELS = {"Gradient-boosted trees": "gbdt", "Text and embeddings": "bert",
               "Several inputs": "two_input", "Image tensors": "image",
               "Text pipelines": "string"}


def kind_examples() -> dict[str, list[str]]:
    """Per "## " section of docs/model_kinds.md: its curl commands."""
    text = (ROOT / "docs" / "model_kinds.md").read_text()
    return {part.split("\n", 1)[0]: [c for c in shell_commands(part) if "curl " in c]
            for part in text.split("\n## ")[1:]}


@pytest.mark.parametrize("kind", sorted(KIND_MODELS))
def test_model_kind_examples_work(kind: str, app, built_model) -> None:
    title = next(t for t in kind_examples() if t.startswith(kind))
    commands = kind_examples()[title]
    assert commands, title
    fn = app({"MODEL_URI": str(built_model(KIND_MODELS[kind])[0])})
    for command in commands:
        assert '"predictions"' in run_curl(fn, command), command


def test_feature_lookup_example_works(app) -> None:
    """docs/feature_lookups.md: its lookups declaration pointed at a local feature service
    (tests/feature_service.py answers the same JSON shape), and its curl."""
    from tests.feature_service import FeatureService

    text = (ROOT / "docs" / "feature_lookups.md").read_text()
    declared = re.search(r"```json\n(.*?)```", text, re.S).group(1)
    service = FeatureService()
    try:
        specs = json.loads("{" + declared.replace("https://features.internal",
                                                  service.url) + "}")["lookups"]
        fn = app({"LOOKUP_SPECS": json.dumps(specs)})
        (command,) = [c for c in shell_commands(text) if "curl " in c]
        answer = json.loads(run_curl(fn, command))
        assert answer.get("errors", 0) == 0 and len(answer["predictions"]) == 3, answer
        assert service.total_calls == 2  # u-17 and i-3, each fetched once
    finally:
        service.stop()


def model_export_commands() -> list[tuple[str, str]]:
    return [(page.name, c) for page in PAGES for c in shell_commands(page.read_text())
            if c.startswith(("python -m model_export", ".venv/bin/python -m model_export"))]


def test_model_export_examples_parse_with_the_real_cli() -> None:
    """Every model_export command shown parses with the CLI's own parser (subcommand, flags,
    --input declarations), and names an .onnx output where it names one."""
    from model_export.cli import build_parser

    commands = model_export_commands()
    assert len(commands) >= 20
    parser = build_parser()
    for page, command in commands:
        argv = shlex.split(command, comments=True)
        args = parser.parse_args(argv[argv.index("model_export") + 1:])
        out = getattr(args, "out", None)
        assert out is None or out.suffix == ".onnx", (page, command)


def test_every_command_shown_is_run_here_or_covered_elsewhere() -> None:
    for page in PAGES:
        for command in shell_commands(page.read_text()):
            first = command.split("\n", 1)[0]
            assert ("curl " in command or "model_export" in first
                    or first.startswith(tuple(COVERED_ELSEWHERE))), (page.name, command)
