"""Counters and latency sums for the instance, exposed at GET /metrics (Prometheus text).

Plain dict increments under the GIL: cheap enough for the hot path, and exact per instance.
Other parts (feature lookups, events) register their own names with ``inc``/``observe``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

_counters: dict[str, float] = defaultdict(float)
_help: dict[str, str] = {}


def inc(name: str, value: float = 1.0, doc: str = "") -> None:
    """Add ``value`` to counter ``name`` (labels go in the name: ``x{route="/predict"}``)."""
    _counters[name] += value
    if doc:
        _help.setdefault(name.split("{", 1)[0], doc)


def observe(name: str, seconds: float, doc: str = "") -> None:
    """Record one duration as ``name_seconds_sum`` and ``name_seconds_count``."""
    base, _, labels = name.partition("{")
    suffix = "{" + labels if labels else ""
    inc(f"{base}_seconds_sum{suffix}", seconds, doc)
    inc(f"{base}_seconds_count{suffix}", 1.0, doc)


def snapshot() -> dict[str, float]:
    """A copy of every counter."""
    return dict(_counters)


def render(extra: Iterable[tuple[str, float]] = ()) -> str:
    """Prometheus text exposition format of all counters plus ``extra`` gauges."""
    lines: list[str] = []
    for name, doc in sorted(_help.items()):
        lines.append(f"# HELP {name} {doc}")
    for name, value in sorted(list(_counters.items()) + list(extra)):
        lines.append(f"{name} {value:g}")
    return "\n".join(lines) + "\n"
