"""The README documents what the code does: every setting, every route."""

import shlex
from pathlib import Path

import pytest

from functions.settings_doc import splice

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_settings_table_is_current() -> None:
    text = README.read_text()
    assert splice(text) == text, "run: python -m functions.settings_doc --write README.md"


def test_readme_shows_every_route() -> None:
    text = README.read_text()
    for route in ("/predict", "/batch-predict", "/healthz", "/readyz", "/model", "/metrics",
                  "/v2/models/iris/infer"):
        assert f"localhost:8080{route}" in text, route


def readme_curls() -> list[str]:
    """Each curl command in the README's "Calling it" block, continuation lines joined."""
    text = README.read_text()
    block = text.split("## Calling it", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands, current = [], ""
    for line in block.splitlines():
        if not current and not line.startswith("curl "):
            continue
        if current and not current.endswith(" "):  # inside a quoted, multi-line argument
            current += "\n"
        code = line.split("  # ", 1)[0].rstrip() if not current else line.rstrip()
        current += code.removesuffix("\\")
        if code.endswith("\\"):
            current += " "
            continue
        try:
            shlex.split(current)
        except ValueError:  # an unterminated quote: the command goes on
            continue
        commands.append(current.strip())
        current = ""
    return commands


def test_readme_curl_examples_work(demo_function) -> None:
    import shutil
    import subprocess

    assert shutil.which("curl"), "curl is needed to check the README examples"
    commands = readme_curls()
    assert len(commands) >= 8
    for command in commands:
        command = command.replace("curl -s localhost:8080", f"curl -sf {demo_function.url}")
        command = command.replace("curl -s 'localhost:8080", f"curl -sf '{demo_function.url}")
        assert "localhost:8080" not in command, command
        out = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=30,
                             check=False)
        assert out.returncode == 0, (command, out.stdout, out.stderr)
        assert out.stdout.strip(), command


KIND_MODELS = {"Gradient-boosted trees": "gbdt_zipmap_model", "Text and embeddings": "tiny_bert",
               "Several inputs": "two_input_model", "Image tensors": "image_model",
               "Text pipelines": "string_model"}


def kind_examples() -> dict[str, list[str]]:
    """Per "### " subsection of "## Model kinds": its shell commands that call the function."""
    text = README.read_text().split("## Model kinds", 1)[1].split("\n## ", 1)[0]
    found = {}
    for part in text.split("\n### ")[1:]:
        title = part.split("\n", 1)[0]
        if "```sh" not in part:
            continue
        block = part.split("```sh", 1)[1].split("```", 1)[0]
        commands, current = [], ""
        for line in block.splitlines():
            if line.startswith(("python -m model_export", "#")) or not line.strip():
                continue
            current += line.rstrip().removesuffix("\\") + " "
            if not line.rstrip().endswith("\\"):
                commands.append(current.strip())
                current = ""
        found[title] = commands
    return found


@pytest.mark.parametrize("kind", sorted(KIND_MODELS))
def test_readme_model_kind_examples_work(kind: str, tmp_path: Path) -> None:
    import subprocess

    from tests import model_kinds
    from tests.servers import start_function

    title = next(t for t in kind_examples() if t.startswith(kind))
    commands = kind_examples()[title]
    assert commands, title
    built = getattr(model_kinds, KIND_MODELS[kind])(tmp_path / "model")
    fn = start_function({"MODEL_URI": str(built[0])}, tmp_path)
    try:
        for command in commands:
            command = command.replace("curl -s localhost:8080", f"curl -sf {fn.url}")
            out = subprocess.run(command, shell=True, capture_output=True, text=True,
                                 timeout=30, check=False)
            assert out.returncode == 0, (command, out.stdout, out.stderr, fn.log())
            assert '"predictions"' in out.stdout, (command, out.stdout)
    finally:
        fn.stop()
