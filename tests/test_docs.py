"""The README documents what the code does: every setting, every route."""

from pathlib import Path

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
