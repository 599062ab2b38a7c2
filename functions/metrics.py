"""Counters and latency sums for the process, exposed at GET /metrics (Prometheus text).

Plain dict increments under the GIL: cheap enough for the hot path, and exact per process.
Any part registers its own names with ``inc`` (counters) and ``observe`` (durations, shown
as a summary: ``NAME_seconds_sum`` and ``NAME_seconds_count``). Labels go in the name,
``x_total{route="/predict"}``; keep their values to a small, fixed set.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

_counters: dict[str, float] = defaultdict(float)
_families: dict[str, tuple[str, str]] = {}  # family -> (type, help)


def _family(name: str) -> str:
    return name.split("{", 1)[0]


def inc(name: str, value: float = 1.0, doc: str = "") -> None:
    """Add ``value`` to counter ``name``."""
    if name in _counters:  # the hot path: a known series, one dict update
        _counters[name] += value
        return
    _counters[name] += value
    family = _family(name)
    if family not in _families or (doc and not _families[family][1]):
        _families[family] = ("counter", doc)


_summary_keys: dict[str, tuple[str, str]] = {}


def observe(name: str, seconds: float, doc: str = "") -> None:
    """Record one duration under the summary ``NAME_seconds``."""
    keys = _summary_keys.get(name)
    if keys is not None:  # the hot path: a known series
        _counters[keys[0]] += seconds
        _counters[keys[1]] += 1.0
        return
    family, brace, labels = name.partition("{")
    summary = f"{family}_seconds"
    keys = _summary_keys[name] = (f"{summary}_sum{brace}{labels}",
                                  f"{summary}_count{brace}{labels}")
    _counters[keys[0]] += seconds
    _counters[keys[1]] += 1.0
    if summary not in _families or (doc and not _families[summary][1]):
        _families[summary] = ("summary", doc)


def _order(item: tuple[str, float]) -> tuple[str, float]:
    """Sort key: by name, histogram buckets by their numeric bound (+Inf last)."""
    name = item[0]
    head, sep, bound = name.partition('le="')
    if not sep:
        return name, 0.0
    return head, float("inf") if bound.startswith("+Inf") else float(bound.split('"', 1)[0])


BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def histogram(name: str, value: float, doc: str = "", buckets: tuple[float, ...] = BUCKETS) -> None:
    """Record one value in the histogram ``name`` (cumulative ``le`` buckets, sum, count)."""
    for bound in buckets:
        if value <= bound:
            _counters[f'{name}_bucket{{le="{bound:g}"}}'] += 1.0
    _counters[f'{name}_bucket{{le="+Inf"}}'] += 1.0
    _counters[f"{name}_sum"] += value
    _counters[f"{name}_count"] += 1.0
    if name not in _families or (doc and not _families[name][1]):
        _families[name] = ("histogram", doc)


def render(gauges: Iterable[tuple[str, float, str]] = ()) -> str:
    """Prometheus text exposition (version 0.0.4): HELP and TYPE before each family."""
    by_family: dict[str, list[str]] = defaultdict(list)
    for name, value in sorted(_counters.items(), key=_order):
        base = _family(name)
        for suffix in ("_sum", "_count", "_bucket"):
            if base.endswith(suffix) and base[: -len(suffix)] in _families:
                base = base[: -len(suffix)]
        by_family[base].append(f"{name} {value:.15g}")
    lines: list[str] = []
    for name, value, doc in gauges:
        lines += [f"# HELP {name} {doc}", f"# TYPE {name} gauge", f"{name} {value:.15g}"]
    for family in sorted(by_family):
        kind, doc = _families.get(family, ("untyped", ""))
        if doc:
            lines.append(f"# HELP {family} {doc}")
        lines.append(f"# TYPE {family} {kind}")
        lines += by_family[family]
    return "\n".join(lines) + "\n"
