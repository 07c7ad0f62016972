"""The trigger report for people (text) and for programs (JSON)."""

from __future__ import annotations

import json

from .. import matrix
from ..times import iso
from .evaluate import BREACHING, FAIL, NOT_BREACHING, TriggerReport, TriggerResult


def _tag(result: TriggerResult) -> str:
    return f"[{result.issue_type}/{result.severity}]"


def format_report(report: TriggerReport) -> str:
    """The report for a terminal: fired triggers with evidence, the others, the implied decision."""
    words = {BREACHING: "counts as breaching", NOT_BREACHING: "counts as not breaching", FAIL: "stops the run"}
    lines = [f"Triggers from {report.source}, collected at {iso(report.collected_at)} "
             f"(interval {matrix.format_duration(report.interval)}; missing data {words[report.missing_policy]})"]
    if report.fired:
        lines.append(f"FIRED ({len(report.fired)}):")
        lines.extend(f"  {r.name} {_tag(r)} {r.description}\n      {r.reason}" for r in report.fired)
    lines.append(f"Not fired ({len(report.not_fired)}):")
    lines.extend(f"  {r.name}: {r.reason}" for r in report.not_fired)
    lines.extend(f"WARNING: {warning}" for warning in report.warnings)
    if report.implied is None:
        lines.append("No trigger fired.")
    else:
        lines.append(f"Implied decision (most urgent fired trigger: {report.implied_by}):")
        lines.extend(f"  {line}" for line in matrix.format_decision(report.implied).splitlines())
    return "\n".join(lines)


def format_json(report: TriggerReport) -> str:
    """The report as indented JSON (`TriggerReport.to_dict`), as `rollbackctl triggers --json` prints it."""
    return json.dumps(report.to_dict(), indent=2)
