"""Gate results as people and CI read them: a Rich table grouped by area, a JSON list, and
JUnit XML (one testcase per gate, one testsuite per area). Pure: text in, text out."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mindscape_ops.check.model import Result, Status, by_group

if TYPE_CHECKING:
    from rich.table import Table

_STYLE = {Status.PASS: "green", Status.FAIL: "red", Status.SKIP: "dim"}


def as_json(results: Sequence[Result]) -> str:
    return json.dumps([r.as_dict() for r in results], indent=2) + "\n"


def shown_status(result: Result) -> str:
    if result.status is Status.FAIL and result.severity == "warning":
        return "warn"
    return str(result.status)


def table(results: Sequence[Result], title: str) -> Table:
    from rich.markup import escape
    from rich.table import Table

    out = Table(title=title, title_justify="left")
    for column in ("gate", "status", "time", "message"):
        out.add_column(column, overflow="fold", no_wrap=column in ("gate", "status"))
    for group, rows in by_group(results).items():
        out.add_section()
        out.add_row(f"[bold]{group}[/]", "", "", "")
        for r in rows:
            style = "yellow" if shown_status(r) == "warn" else _STYLE[r.status]
            text = escape(r.message)
            if r.remedy:
                text += f"\n[dim]→ {escape(r.remedy)}[/]"
            out.add_row(f"  {r.id}", f"[{style}]{shown_status(r)}[/]", f"{r.duration_ms} ms", text)
    return out


def summary(results: Sequence[Result]) -> str:
    counts = {"pass": 0, "fail": 0, "warn": 0, "skip": 0}
    for r in results:
        counts[shown_status(r)] += 1
    return ", ".join(f"{n} {name}" for name, n in counts.items() if n or name in ("pass", "fail"))


def junit(results: Sequence[Result], wall_ms: int | None = None) -> str:
    """JUnit XML: a failed error gate is a <failure>; a failed warning gate is a <failure
    type="warning"> too (CI shows it; the exit code does not count it); skip is <skipped>."""
    suites = ET.Element("testsuites", name="mindscape check")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for group, rows in by_group(results).items():
        suite = ET.SubElement(suites, "testsuite", name=group)
        for r in rows:
            case = ET.SubElement(suite, "testcase", classname=f"mindscape.{group}", name=r.id)
            case.set("time", f"{r.duration_ms / 1000:.3f}")
            if r.status is Status.FAIL:
                failure = ET.SubElement(case, "failure", message=r.message, type=r.severity)
                failure.text = f"{r.message}\nremedy: {r.remedy}" if r.remedy else r.message
            elif r.status is Status.SKIP:
                ET.SubElement(case, "skipped", message=r.message)
            else:
                ET.SubElement(case, "system-out").text = r.message
        counts = _counts(rows)
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{max((r.duration_ms for r in rows), default=0) / 1000:.3f}")
    for key, value in totals.items():
        suites.set(key, str(value))
    if wall_ms is not None:
        suites.set("time", f"{wall_ms / 1000:.3f}")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _counts(rows: Sequence[Result]) -> dict[str, int]:
    return {
        "tests": len(rows),
        "failures": sum(1 for r in rows if r.status is Status.FAIL),
        "skipped": sum(1 for r in rows if r.status is Status.SKIP),
    }
