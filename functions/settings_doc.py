"""The README's settings table: ``python -m functions.settings_doc [--write README.md]``.

The table is generated from the Settings class (field docstrings are kept by pydantic's
``use_attribute_docstrings``), and a test checks that the README carries every setting.
"""

from __future__ import annotations

from pydantic_core import PydanticUndefined

from functions.settings import BUNDLED_MODEL, Settings


def _default(field) -> str:  # type: ignore[no-untyped-def]
    if field.default_factory is not None:
        return "(computed)"
    if field.default is PydanticUndefined or field.default is None:
        return "—"
    value = field.default
    if value == str(BUNDLED_MODEL):
        return "models/iris.onnx (bundled)"
    return str(value).lower() if isinstance(value, bool) else str(value)


def table() -> str:
    """Markdown table: env var, default, meaning."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        doc = " ".join((field.description or "").split()).replace("|", "\\|")
        lines.append(f"| `{name.upper()}` | `{_default(field)}` | {doc} |")
    return "\n".join(lines)


def splice(readme: str) -> str:
    """``readme`` with the text between the settings-table markers replaced by ``table()``."""
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table()}\n{END}{tail}"


START, END = "<!-- settings-table -->", "<!-- /settings-table -->"

if __name__ == "__main__":
    import sys
    from pathlib import Path

    if sys.argv[1:2] == ["--write"]:
        path = Path(sys.argv[2] if len(sys.argv) > 2 else "README.md")
        path.write_text(splice(path.read_text()))
    else:
        print(table())
