"""The settings table of docs/settings.md: ``python -m functions.config.settings_doc [--write]``.

The table is generated from the Settings class and its field docstrings, and a test checks
that docs/settings.md carries every setting.
"""

from __future__ import annotations

import ast
from pathlib import Path

import msgspec

from functions.config import settings as settings_module
from functions.config.settings import BUNDLED_MODEL, Settings


def _default(field: msgspec.structs.FieldInfo) -> str:
    if field.default_factory is not msgspec.NODEFAULT:
        return "(computed)"
    if field.default is msgspec.NODEFAULT or field.default is None:
        return "—"
    value = field.default
    if value == str(BUNDLED_MODEL):
        return "models/iris.onnx (bundled)"
    return str(value).lower() if isinstance(value, bool) else str(value)


def field_docs() -> dict[str, str]:
    """Each Settings field's docstring (the string literal after it), read from the source."""
    tree = ast.parse(Path(settings_module.__file__).read_text())
    body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings").body
    docs = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)):
            docs[node.target.id] = " ".join(str(after.value.value).split())
    return docs


def table() -> str:
    """Markdown table: env var, default, meaning."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    docs = field_docs()
    for field in msgspec.structs.fields(Settings):
        doc = docs.get(field.name, "").replace("|", "\\|")
        lines.append(f"| `{field.name.upper()}` | `{_default(field)}` | {doc} |")
    return "\n".join(lines)


def splice(readme: str) -> str:
    """``readme`` with the text between the settings-table markers replaced by ``table()``."""
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table()}\n{END}{tail}"


START, END = "<!-- settings-table -->", "<!-- /settings-table -->"

if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--write"]:
        path = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/settings.md")
        path.write_text(splice(path.read_text()))
    else:
        print(table())
