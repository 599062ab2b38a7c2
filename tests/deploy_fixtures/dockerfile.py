"""Read a Dockerfile's instructions and replay its install and start steps without Docker."""

from __future__ import annotations

import json
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Dockerfile:
    """The instructions the tests replay (continuation lines joined)."""

    base: str = ""
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    copies: list[tuple[list[str], str]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)


def parse(path: Path) -> Dockerfile:
    text = path.read_text().replace("\\\n", " ")
    parsed = Dockerfile()
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "FROM":
            parsed.base = rest.strip()
        elif op == "ENV":
            parsed.env.update(item.split("=", 1) for item in shlex.split(rest))
        elif op == "WORKDIR":
            parsed.workdir = rest.strip()
        elif op == "COPY":
            *sources, dest = shlex.split(rest)
            parsed.copies.append((sources, dest))
        elif op == "RUN":
            parsed.runs.append(rest.strip())
        elif op == "CMD":
            parsed.cmd = json.loads(rest)
    return parsed


def copy_sources(dockerfile: Dockerfile, context: Path, app: Path) -> None:
    """Replay the COPY instructions (relative destinations) from ``context`` into ``app``,
    which stands for WORKDIR. As in Docker, a directory's contents land in the destination."""
    for sources, dest in dockerfile.copies:
        target = app / dest
        for source in sources:
            src = context / source
            if src.is_dir():
                shutil.copytree(
                    src, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, target)
