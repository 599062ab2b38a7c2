"""The README's serving table, written from a serving_bench result.

    .venv/bin/python -m benchmarks.serving_table    # from benchmarks/results/serving.json

serving_bench calls ``write_readme`` at the end of every run, so ``make bench`` regenerates
the table between the ``<!-- serving-table -->`` markers; the prose around it is ours.
"""

from __future__ import annotations

import json
import re
import time

from benchmarks.harness import RESULTS, ROOT

START, END = "<!-- serving-table -->", "<!-- /serving-table -->"
TARGETS = {"single": 0.9, "fastapi": 3.0, "litserve": 8.0, "batch": 1.0, "cold": 1.05,
           "rss": 0.05, "idle": 1.0}


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _rounds(rates: dict, measure: str, peer: str) -> str:
    ratios = [a / b for a, b in zip(rates[measure]["ours"], rates[measure][peer])]
    return f"rounds {min(ratios):.2f}–{max(ratios):.2f}x"


def table(result: dict, when: str) -> str:
    """Markdown: each target of the serving benchmark, its result and whether it is met."""
    s, rates = result["summary"], result["rates"]
    one, rows, cols = (s["single_row_req_per_s"], s["batch_1000_rows_per_s"],
                       s["batch_1000_columns_rows_per_s"])
    cold, soak = s["cold_start_s"], s["soak"]
    r1 = one["ratios"]
    lines = [
        f"Run of {when} (`{result.get('command', 'make bench')}`):", "",
        "| measure | target | result | |", "| --- | --- | --- | --- |",
        f"| 1 row, 8 connections: ours / tuned handler | ≥ {TARGETS['single']}x | "
        f"**{r1['tuned']:.2f}x** ({one['median']['ours']:,.0f} vs "
        f"{one['median']['tuned']:,.0f} req/s; {_rounds(rates, 'single_row_req_per_s', 'tuned')})"
        f" | {_met(r1['tuned'] >= TARGETS['single'])} |",
        f"| the same against FastAPI | ≥ {TARGETS['fastapi']:.0f}x | **{r1['fastapi']:.2f}x** "
        f"({one['median']['fastapi']:,.0f} req/s) | {_met(r1['fastapi'] >= TARGETS['fastapi'])} |",
        f"| the same against LitServe | ≥ {TARGETS['litserve']:.0f}x | "
        f"**{r1['litserve']:.2f}x** ({one['median']['litserve']:,.0f} req/s; "
        f"{_rounds(rates, 'single_row_req_per_s', 'litserve')}) | "
        f"{_met(r1['litserve'] >= TARGETS['litserve'])} |",
        f"| 1,000 rows, 2 connections, `?format=columns`: ours / tuned | "
        f"≥ {TARGETS['batch']}x | **{cols['ratios']['tuned']:.2f}x** "
        f"({cols['median']['ours'] / 1e6:.2f}M vs {cols['median']['tuned'] / 1e6:.2f}M rows/s);"
        f" {cols['ratios']['fastapi']:.1f}x FastAPI, {cols['ratios']['litserve']:.1f}x LitServe"
        f" | {_met(cols['ratios']['tuned'] >= TARGETS['batch'])} |",
        f"| 1,000 rows, default row objects: ours / tuned | (the default answer) | "
        f"{rows['ratios']['tuned']:.2f}x ({rows['median']['ours'] / 1e3:,.0f}k rows/s); "
        f"{rows['ratios']['fastapi']:.1f}x FastAPI, {rows['ratios']['litserve']:.1f}x LitServe"
        " | |",
        f"| cold start, spawn to first 200: ours / tuned | ≤ {TARGETS['cold']}x | "
        f"{cold['median']['ours']:.3f} s vs {cold['median']['tuned']:.3f} s: "
        f"**{cold['ratio_vs_tuned']:.2f}x** | {_met(cold['ratio_vs_tuned'] <= TARGETS['cold'])} |",
        f"| worker RSS over {soak['requests']:,} requests at 64 connections | "
        f"flat within {TARGETS['rss']:.0%} | {soak['rss_before_kib'] / 1024:.1f} MB -> "
        f"{soak['rss_after_kib'] / 1024:.1f} MB: **{soak['rss_growth']:+.1%}** | "
        f"{_met(abs(soak['rss_growth']) <= TARGETS['rss'])} |",
        f"| CPU while idle (arbiter + worker, 10 s) | < {TARGETS['idle']:.0f}% of a core | "
        f"**{soak['idle_cpu_percent_of_core']:.1f}%** | "
        f"{_met(soak['idle_cpu_percent_of_core'] < TARGETS['idle'])} |"]
    return "\n".join(lines)


def write_readme(result: dict) -> None:
    """Replace the README's serving table with ``result``'s (dated by its ``when``)."""
    readme = ROOT / "README.md"
    text = readme.read_text()
    body = table(result, result.get("when") or time.strftime("%Y-%m-%d %H:%M UTC",
                                                            time.gmtime()))
    new, count = re.subn(f"{re.escape(START)}.*?{re.escape(END)}",
                         lambda _: f"{START}\n{body}\n{END}", text, flags=re.S)
    if count != 1:
        raise SystemExit(f"README.md needs one {START} ... {END} block")
    readme.write_text(new)


def main(argv: list[str] | None = None) -> None:
    result = json.loads((RESULTS / "serving.json").read_text())
    write_readme(result)


if __name__ == "__main__":
    main()
