"""The incident report: an incident record (incident.json) rendered for people, as Markdown or HTML.

Both renderers are pure functions of the record dict (``render_markdown``, ``render_html``); the record
writer also stores the Markdown as ``incident.md`` next to ``incident.json``. The report follows the
rollback plan: the outcome and the next step first, then who decided and why, the phases against the
plan's Appendix C estimates, the Appendix A checklist, the backup, the verifications, the notifications,
the collected logs, the rollback testing comparison (rehearsals) and the Post-Rollback Actions still to
do. Records of failed, interrupted or just-started runs have pending phases and null times: every field
may be missing or ``None`` and the report says so instead of failing.

``rollbackctl report INCIDENT_ID [--format md|html] [--output FILE]`` prints or writes it
(:func:`add_report_parser`, :func:`cmd_report`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import html
import json
import math
import os
import re
import sys
import tempfile
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import paths, phases
from .errors import RollbackctlError

__all__ = [
    "TOTAL_ESTIMATE",
    "Segment",
    "add_report_parser",
    "attempt_segments",
    "axis_ticks",
    "bottlenecks",
    "cmd_report",
    "decision_text",
    "estimate_range",
    "format_clock",
    "format_duration",
    "format_estimate",
    "gantt_svg",
    "maintenance_state",
    "md_cell",
    "phase_duration",
    "phase_within_estimate",
    "render",
    "render_html",
    "render_markdown",
    "total_duration",
    "verification_groups",
    "write_atomic",
]

#: The plan's Appendix C "Total estimated time": 1-2 hours.
TOTAL_ESTIMATE: dict[str, Any] = phases.TOTAL_ESTIMATE
DASH = "\u2014"  # em dash: "no value"
ARROW = "\u2192"

STATUS_COLOURS = {
    "ok": "#2e7d32",
    "failed": "#c62828",
    "interrupted": "#ef6c00",
    "skipped": "#9e9e9e",
    "running": "#1565c0",
    "pending": "#cfd8dc",
}
ESTIMATE_COLOUR = "#7e57c2"
TEXT_COLOURS = {**STATUS_COLOURS, "skipped": "#757575", "pending": "#78909c"}

AUTHORITY_BASIS = {
    "primary": "primary authority (Lead DevOps Engineer)",
    "secondary": "secondary authority (Technical Project Manager)",
    "tertiary": "tertiary authority (CTO)",
    "consensus": "consensus of at least two senior engineers",
    "rehearsal": "rehearsal (rollback testing, no authority needed)",
    "not_checked": "authority not checked",
}

DEFAULT_NEXT_STEP = {
    "in_progress": "The rollback is still running, or its process ended before recording an outcome: "
                   "check the phase table below before doing anything else.",
    "failed": "See the phase that failed and its error below; maintenance mode stays on until the platform "
              "is verified. Fix the cause and run the rollback again, or escalate.",
    "interrupted": "The run was interrupted: see the phase table below for what completed, then run the "
                   "rollback again (completed, idempotent phases change nothing).",
    "nothing_to_do": "Nothing was rolled back; no action is needed for this record.",
}

FOLLOW_UP_DEFAULTS = {
    "root_cause": "to be written (collect the logs of the failed deployment, analyse the monitoring data around "
                  "the failure, review the deployment steps that led to the issue, document the findings here)",
    "tickets": "none yet: create tickets for the issues that caused the rollback and prioritise them by severity",
    "retry_plan": "to be written (revise the deployment plan, add verification steps, consider a phased "
                  "deployment, schedule a new deployment window, give stakeholders an estimated timeline)",
}

_TS_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?Z$")


# ---- small helpers --------------------------------------------------------------------------------

def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def parse_timestamp(value: Any) -> dt.datetime | None:
    """A record timestamp (``2024-05-01T16:04:05Z``, optional fraction) as an aware datetime; None otherwise."""
    if not isinstance(value, str):
        return None
    match = _TS_RE.match(value)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro,
                           tzinfo=dt.UTC)
    except ValueError:
        return None


def _seconds_between(start: Any, end: Any) -> float | None:
    first, last = parse_timestamp(start), parse_timestamp(end)
    if first is None or last is None:
        return None
    return max(0.0, (last - first).total_seconds())


def format_duration(seconds: Any) -> str:
    """Human-friendly duration: ``42 s``, ``3 min 05 s``, ``1 h 02 min``; an em dash when unknown."""
    value = _number(seconds)
    if value is None or value < 0:
        return DASH
    total = round(value)
    if total < 60:
        return f"{total} s"
    if total < 3600:
        minutes, secs = divmod(total, 60)
        return f"{minutes} min {secs:02d} s"
    hours, rest = divmod(total, 3600)
    return f"{hours} h {rest // 60:02d} min"


def _minutes(value: float) -> str:
    return f"{value:g}"


def estimate_range(estimate: Any) -> tuple[float, float] | None:
    """(min, max) minutes of an Appendix C estimate, a missing bound taken from the other; None when none."""
    est = _dict(estimate)
    low, high = _number(est.get("min_minutes")), _number(est.get("max_minutes"))
    if low is not None and high is not None:
        return low, max(low, high)
    if low is not None:
        return low, low
    if high is not None:
        return high, high
    return None


def format_estimate(estimate: Any) -> str:
    """An Appendix C estimate as ``10-15 min`` or ``5 min`` (``1-2 h`` for whole hours); em dash when none."""
    bounds = estimate_range(estimate)
    if bounds is None:
        return DASH
    low, high = bounds
    if low >= 60 and low % 60 == 0 and high % 60 == 0:
        low_h, high_h = _minutes(low / 60), _minutes(high / 60)
        return f"{low_h} h" if low == high else f"{low_h}-{high_h} h"
    return f"{_minutes(low)} min" if low == high else f"{_minutes(low)}-{_minutes(high)} min"


def format_clock(value: Any, reference: Any = None) -> str:
    """Time of day of a timestamp, ``16:04:05Z``; the date is added when it differs from ``reference``'s."""
    moment = parse_timestamp(value)
    if moment is None:
        return DASH if value in (None, "") else _str(value)
    clock = moment.strftime("%H:%M:%SZ")
    ref = parse_timestamp(reference)
    if ref is not None and ref.date() != moment.date():
        return f"{moment:%Y-%m-%d} {clock}"
    return clock


def format_bytes(size: Any) -> str:
    """``1.4 MiB (1468006 bytes)``; em dash when unknown."""
    value = _number(size)
    if value is None:
        return DASH
    units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
    scaled, unit = value, 0
    while scaled >= 1024 and unit < len(units) - 1:
        scaled /= 1024
        unit += 1
    if unit == 0:
        return f"{int(value)} bytes"
    return f"{scaled:.1f} {units[unit]} ({int(value)} bytes)"


def format_value(value: Any, unit: Any = None) -> str:
    """A measured value or threshold with its unit: ``412 ms``, ``0.02 ratio``; em dash when absent."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1e6 else f"{value:.0f}"
    elif isinstance(value, dict | list):
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    else:
        text = str(value)
    return f"{text} {unit}" if unit else text


def describe(value: Any) -> str:
    """Any JSON value as one line for people: dicts as ``key: value; ...``, lists comma-separated."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return "; ".join(f"{key.replace('_', ' ')}: {describe(item)}" for key, item in value.items()) or DASH
    if isinstance(value, list):
        return ", ".join(describe(item) for item in value) or DASH
    return str(value)


def yes_no(value: Any) -> str:
    """``yes`` / ``no`` / em dash for True / False / unknown."""
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return DASH


def safe_relative_link(target: Any) -> str | None:
    """A link target for a file inside the incident folder, URL-quoted; None when it is not such a path."""
    text = _str(target)
    if not text or text.startswith(("/", "\\")) or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text):
        return None
    parts = text.replace("\\", "/").split("/")
    if ".." in parts:
        return None
    return urllib.parse.quote(text.replace("\\", "/"), safe="/._-~")


# ---- what the record says ---------------------------------------------------------------------------

def phase_duration(phase: Mapping[str, Any]) -> float | None:
    """Seconds the phase took: ``duration_seconds``, else its start to its end; None while unknown."""
    value = _number(phase.get("duration_seconds"))
    if value is not None:
        return max(0.0, value)
    return _seconds_between(phase.get("started_at"), phase.get("ended_at"))


def phase_within_estimate(phase: Mapping[str, Any]) -> bool | None:
    """The recorded ``within_estimate``; when absent, duration <= the estimate's maximum for a finished phase."""
    recorded = phase.get("within_estimate")
    if isinstance(recorded, bool):
        return recorded
    est = _dict(phase.get("estimate"))
    high = _number(est.get("max_minutes"))
    duration = phase_duration(phase)
    if high is None or duration is None or phase.get("status") not in ("ok", "failed"):
        return None
    return duration <= high * 60


def total_duration(record: Mapping[str, Any]) -> float | None:
    """The whole run: the outcome's duration, else creation to the outcome's end, else the phases' sum."""
    outcome = _dict(record.get("outcome"))
    value = _number(outcome.get("duration_seconds"))
    if value is not None:
        return max(0.0, value)
    between = _seconds_between(record.get("created_at"), outcome.get("ended_at"))
    if between is not None:
        return between
    durations = [d for d in (phase_duration(_dict(p)) for p in _list(record.get("phases"))) if d is not None]
    return sum(durations) if durations else None


def estimate_sum(phases: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The summed Appendix C estimates of the phases that ran (not pending, not skipped)."""
    low = high = 0.0
    found = False
    for phase in phases:
        bounds = estimate_range(phase.get("estimate"))
        if phase.get("status") in ("pending", "skipped", None) or bounds is None:
            continue
        found = True
        low += bounds[0]
        high += bounds[1]
    return {"label": "phases run", "min_minutes": low, "max_minutes": high} if found else None


def _phase_label(phase: Mapping[str, Any]) -> str:
    return _str(phase.get("title")) or _str(phase.get("name")) or "(unnamed phase)"


def attempts_note(phase: Mapping[str, Any], reference: Any = None) -> str:
    """``2 attempts; attempt 1 interrupted 16:04:05Z-16:06:00Z (error)``; empty for one clean attempt."""
    attempts = [_dict(a) for a in _list(phase.get("attempts"))]
    notes = [f"{len(attempts)} attempts"] if len(attempts) > 1 else []
    for index, attempt in enumerate(attempts, 1):
        status = attempt.get("status")
        if status not in ("interrupted", "failed"):
            continue
        if len(attempts) == 1 and status == phase.get("status"):
            continue  # the phase's own status and error say it already
        when = "-".join(format_clock(attempt.get(key), reference) for key in ("started_at", "ended_at"))
        error = f" ({attempt['error']})" if attempt.get("error") else ""
        notes.append(f"attempt {index} {status} {when}{error}")
    return "; ".join(notes)


def phase_notes(phase: Mapping[str, Any], reference: Any = None) -> str:
    """Attempts, error and note of a phase, one line."""
    parts = [attempts_note(phase, reference)]
    if phase.get("error"):
        parts.append(f"error: {phase['error']}")
    if phase.get("note"):
        parts.append(_str(phase["note"]))
    return "; ".join(p for p in parts if p)


def hosts_changed(phase: Mapping[str, Any]) -> str:
    """``web1, web2 (3 changes)``, ``none``."""
    hosts = ", ".join(_str(h) for h in _list(phase.get("hosts_changed")))
    changed = phase.get("changed")
    count = f" ({changed} change{'s' if changed != 1 else ''})" if isinstance(changed, int) and changed else ""
    return (hosts or "none") + count


def _checklist_item(record: Mapping[str, Any], *needles: str) -> dict[str, Any] | None:
    for item in _list(record.get("checklist")):
        text = _str(_dict(item).get("item")).lower()
        if all(needle in text for needle in needles):
            return _dict(item)
    return None


def _phase_named(record: Mapping[str, Any], *names: str) -> dict[str, Any] | None:
    for phase in _list(record.get("phases")):
        if _dict(phase).get("name") in names:
            return _dict(phase)
    return None


def maintenance_state(record: Mapping[str, Any]) -> str | None:
    """``on`` when maintenance mode was enabled and not disabled again, ``off`` when disabled, else None.

    Read from the Appendix A checklist ("Maintenance mode enabled" / "... disabled"), else from the phases
    ``maintenance_on`` / ``maintenance_off``. A check-mode run changes nothing: None.
    """
    if record.get("mode") == "check":
        return None
    enabled, disabled = _checklist_item(record, "maintenance", "enabled"), _checklist_item(record, "maintenance",
                                                                                           "disabled")
    on = bool(enabled and enabled.get("done"))
    off = bool(disabled and disabled.get("done"))
    if enabled is None and disabled is None:
        on_phase = _phase_named(record, "maintenance_on", "maintenance_enable", "enable_maintenance")
        off_phase = _phase_named(record, "maintenance_off", "maintenance_disable", "disable_maintenance")
        on = bool(on_phase and on_phase.get("status") == "ok")
        off = bool(off_phase and off_phase.get("status") == "ok")
    if off:
        return "off"
    if on:
        return "on"
    return None


def stopped_at(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first failed, interrupted or running phase: where the run stopped (or is)."""
    for status in ("failed", "interrupted", "running"):
        for phase in _list(record.get("phases")):
            if _dict(phase).get("status") == status:
                return _dict(phase)
    return None


def verification_groups(record: Mapping[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Checks grouped by phase (else scope), groups in phase order, failed checks first in each group."""
    phases = [_dict(p) for p in _list(record.get("phases"))]
    titles = {p.get("name"): _phase_label(p) for p in phases}
    order = {p.get("name"): index for index, p in enumerate(phases)}
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    labels: dict[tuple[int, str], str] = {}
    for position, raw in enumerate(_list(record.get("verifications"))):
        check = _dict(raw)
        phase, scope = check.get("phase"), _str(check.get("scope")) or "unscoped"
        if phase:
            key = (order.get(phase, len(phases) + position), f"phase:{phase}")
            label = f"{titles.get(phase, phase)} (scope {scope})" if phase in titles else f"{phase} (scope {scope})"
        else:
            key = (len(phases) + 10_000, f"scope:{scope}")
            label = f"scope {scope}"
        same = next((k for k in groups if k[1] == key[1]), key)
        groups.setdefault(same, []).append(check)
        labels.setdefault(same, label)
    result = []
    for key in sorted(groups, key=lambda k: k[0]):
        checks = sorted(groups[key], key=lambda c: 0 if c.get("verdict") == "fail" else 1)
        result.append((labels[key], checks))
    return result


def verification_counts(record: Mapping[str, Any]) -> dict[str, int]:
    counts = {"pass": 0, "fail": 0, "skip": 0}
    for check in _list(record.get("verifications")):
        verdict = _dict(check).get("verdict")
        if verdict in counts:
            counts[verdict] += 1
    return counts


def bottlenecks(record: Mapping[str, Any], top: int = 3) -> list[dict[str, Any]]:
    """Process refinement: the phases with the largest share of the phase time, and every phase over its estimate.

    Each entry: ``phase`` (title), ``name``, ``duration``, ``share`` (0..1 of the summed phase durations),
    ``estimate`` (text), ``over_by`` (seconds beyond the estimate's maximum, or None), ``largest`` (among the
    ``top`` longest). Longest first.
    """
    timed = []
    for raw in _list(record.get("phases")):
        phase = _dict(raw)
        duration = phase_duration(phase)
        if duration is not None and phase.get("status") not in ("pending", "skipped"):
            timed.append((phase, duration))
    total = sum(d for _, d in timed)
    ranked = sorted(timed, key=lambda item: item[1], reverse=True)
    largest = {id(p) for p, d in ranked[:top] if d > 0}
    result = []
    for phase, duration in ranked:
        high = _number(_dict(phase.get("estimate")).get("max_minutes"))
        over = None
        if high is not None and (duration > high * 60 or phase_within_estimate(phase) is False):
            over = max(0.0, duration - high * 60)
        if id(phase) not in largest and over is None:
            continue
        result.append({"phase": _phase_label(phase), "name": phase.get("name"), "duration": duration,
                       "share": duration / total if total else 0.0, "estimate": format_estimate(phase.get("estimate")),
                       "over_by": over, "largest": id(phase) in largest})
    return result


def _bottleneck_line(entry: Mapping[str, Any]) -> str:
    line = (f"{entry['phase']}: {format_duration(entry['duration'])}, {entry['share'] * 100:.0f}% of the phase time "
            f"(estimate {entry['estimate']})")
    if entry.get("over_by") is not None:
        line += f"; exceeded its estimate by {format_duration(entry['over_by'])}"
    return line


def _outcome_status(record: Mapping[str, Any]) -> str:
    return _str(_dict(record.get("outcome")).get("status")) or "in_progress"


def _next_step(record: Mapping[str, Any]) -> str | None:
    outcome = _dict(record.get("outcome"))
    status = _outcome_status(record)
    if outcome.get("next_step"):
        return _str(outcome["next_step"])
    if status == "succeeded":
        return None
    return DEFAULT_NEXT_STEP.get(status, "not recorded")


def _total_verdict(record: Mapping[str, Any]) -> str:
    total = total_duration(record)
    plan = format_estimate(TOTAL_ESTIMATE)
    if total is None:
        return f"{DASH} (plan: {plan})"
    so_far = {"in_progress": " so far", "failed": " until it stopped", "interrupted": " until it stopped"}.get(
        _outcome_status(record), "")
    within = total <= TOTAL_ESTIMATE["max_minutes"] * 60
    verdict = "within the estimate" if within else (
        f"over the estimate by {format_duration(total - TOTAL_ESTIMATE['max_minutes'] * 60)}")
    return f"{format_duration(total)}{so_far} vs the plan's total estimated time of {plan}: {verdict}"


def _maintenance_line(record: Mapping[str, Any]) -> str | None:
    state = maintenance_state(record)
    if state == "on":
        return "maintenance mode is ON: users see the maintenance page"
    if state == "off":
        return "maintenance mode is off: users are served"
    if record.get("mode") == "check":
        return "check mode (dry run): nothing was changed on the platform"
    return None


def _stopped_line(record: Mapping[str, Any]) -> str | None:
    phase = stopped_at(record)
    if phase is None:
        return None
    error = f": {phase['error']}" if phase.get("error") else ""
    return f"{_phase_label(phase)} ({phase.get('status')}){error}"


def _version_line(record: Mapping[str, Any]) -> str:
    source, target = record.get("from_version"), record.get("to_version")
    return f"{source or '?'} {ARROW} {target or '?'}"


def _environment_line(record: Mapping[str, Any]) -> str:
    env = _dict(record.get("environment"))
    name = _str(env.get("name"))
    inventory = _str(env.get("inventory"))
    head = f"{name} (inventory {inventory})" if name and inventory else (name or inventory or DASH)
    hosts = _dict(env.get("hosts"))
    groups = "; ".join(f"{group}: {', '.join(_str(h) for h in _list(members))}" for group, members in hosts.items())
    return f"{head}; hosts {groups}" if groups else head


def _authority_lines(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    auth = _dict(record.get("authority"))
    basis = _str(auth.get("basis"))
    basis_text = AUTHORITY_BASIS.get(basis, basis or DASH)
    if auth.get("consensus"):
        basis_text += f": {describe(auth['consensus'])}"
    rows = [("Decided by", _str(auth.get("decided_by")) or DASH), ("Role", _str(auth.get("role")) or DASH),
            ("Basis of authority", basis_text)]
    if auth.get("approved_by"):
        rows.append(("Approved by", describe(auth["approved_by"])))
    if auth.get("explanation"):
        rows.append(("Authority check", _str(auth["explanation"])))
    return rows


def _database_line(record: Mapping[str, Any]) -> str:
    db = _dict(record.get("database"))
    restore = db.get("restore")
    if restore is True:
        decision = "restore the database"
    elif restore is False:
        decision = "code only, no database restore"
    else:
        decision = "not decided yet"
    parts = [f"{decision} (requested: {db.get('requested') or DASH})"]
    if db.get("reason"):
        parts.append(f"why: {db['reason']}")
    if db.get("database_schema") is not None or db.get("target_schema") is not None:
        parts.append(f"schema: database {_str(db.get('database_schema')) or DASH}, "
                     f"target release {_str(db.get('target_schema')) or DASH}")
    if db.get("backup_name"):
        parts.append(f"backup {db['backup_name']}")
    return "; ".join(_str(p) for p in parts)


def summary_rows(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The summary table: (field, value) pairs, plain text."""
    mode = record.get("mode")
    mode_text = "check (dry run: nothing changed)" if mode == "check" else _str(mode) or DASH
    rows = [
        ("Environment", _environment_line(record)),
        ("Procedure", _str(record.get("procedure")) or DASH),
        ("Mode", mode_text),
        ("Version", _version_line(record)),
        ("Reason", _str(record.get("reason")) or DASH),
        *_authority_lines(record),
        ("Database decision", _database_line(record)),
        ("Started", _str(record.get("created_at")) or DASH),
        ("Last updated", _str(record.get("updated_at")) or DASH),
        ("Recorded by", _str(record.get("writer")) or DASH),
    ]
    return rows


_TRIGGER_SHOWN = {"name", "trigger", "id", "title", "description", "category", "group", "issue_type", "severity",
                  "evidence", "detail", "message", "value", "threshold", "unit", "fired", "missing_decided"}


def _trigger_fields(trigger: Any) -> tuple[str, str]:
    """(trigger, evidence) of one trigger, whatever its shape.

    Knows the `rollbackctl triggers` form (``name``, ``category``, ``description``, ``issue_type``,
    ``severity``, ``evidence: {reason, ...}``) and simpler ones (a string; ``value``/``threshold``/``unit``).
    """
    if not isinstance(trigger, dict):
        return describe(trigger), ""
    name_key = next((k for k in ("name", "trigger", "id", "title") if trigger.get(k)), None)
    name = _str(trigger.get(name_key)) if name_key else "(unnamed trigger)"
    if trigger.get("description"):
        name = f"{name}: {trigger['description']}"
    meta = [_str(trigger.get("category") or trigger.get("group"))]
    if trigger.get("issue_type") or trigger.get("severity"):
        meta.append(f"{_str(trigger.get('issue_type')) or '?'}/{_str(trigger.get('severity')) or '?'}")
    meta = [m for m in meta if m]
    if meta:
        name = f"{name} ({', '.join(meta)})"
    evidence_parts = []
    evidence = trigger.get("evidence")
    if isinstance(evidence, dict):
        if evidence.get("reason"):
            evidence_parts.append(_str(evidence["reason"]))
            if evidence.get("policy_applied"):
                evidence_parts.append(f"missing data decided by the {evidence['policy_applied']} policy")
        elif evidence:
            evidence_parts.append(describe(evidence))
    elif evidence not in (None, "", []):
        evidence_parts.append(describe(evidence))
    for key in ("detail", "message"):
        if trigger.get(key):
            evidence_parts.append(describe(trigger[key]))
    if "value" in trigger or "threshold" in trigger:
        unit = trigger.get("unit")
        evidence_parts.append(f"value {format_value(trigger.get('value'), unit)}, "
                              f"threshold {format_value(trigger.get('threshold'), unit)}")
    rest = {k: v for k, v in trigger.items() if k not in _TRIGGER_SHOWN}
    if rest:
        evidence_parts.append(describe(rest))
    return name, "; ".join(evidence_parts)


def trigger_rows(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(trigger, evidence) for each trigger that fired."""
    return [_trigger_fields(t) for t in _list(_dict(record.get("triggers")).get("fired"))]


def _not_fired_names(record: Mapping[str, Any]) -> list[str]:
    names = []
    for trigger in _list(_dict(record.get("triggers")).get("not_fired")):
        if isinstance(trigger, dict):
            key = next((k for k in ("name", "trigger", "id", "title") if trigger.get(k)), None)
            names.append(_str(trigger.get(key)) if key else "(unnamed trigger)")
        else:
            names.append(describe(trigger))
    return names


def decision_text(decision: Mapping[str, Any]) -> str:
    """A decision-matrix answer (`rollbackctl decide`) as one line: answer, status, row, procedure, why."""
    answer = _str(decision.get("decision")).replace("_", " ") or "no automatic answer"
    parts = [f"{answer} (status: {_str(decision.get('status')).replace('_', ' ') or DASH})"]
    row = decision.get("row")
    if isinstance(row, int) and not isinstance(row, bool):
        parts.append(f"matrix row {row}: {decision['row_text']}" if decision.get("row_text") else f"matrix row {row}")
    elif row not in (None, {}, [], ""):
        parts.append(f"matrix row: {describe(row)}")
    elif decision.get("issue_type") or decision.get("severity"):
        parts.append(f"no matrix row for {_str(decision.get('issue_type')) or '?'}/"
                     f"{_str(decision.get('severity')) or '?'}")
    if decision.get("fix_estimate"):
        parts.append(f"fix estimate {decision['fix_estimate']}")
    if decision.get("procedure"):
        parts.append(f"{decision['procedure']} procedure")
    if decision.get("database_restore"):
        parts.append(f"database restore: {decision['database_restore']}")
    if decision.get("explanation"):
        parts.append(f"why: {decision['explanation']}")
    return "; ".join(_str(p) for p in parts)


def decision_line(record: Mapping[str, Any]) -> str | None:
    """The decision-matrix answer recorded for the run, else the one the triggers implied; None when neither."""
    decision = record.get("decision")
    if isinstance(decision, dict):
        return decision_text(decision)
    triggers = _dict(record.get("triggers"))
    implied = triggers.get("implied")
    if isinstance(implied, dict):
        by = f" (most urgent trigger: {triggers['implied_by']})" if triggers.get("implied_by") else ""
        return f"implied by the triggers{by}: {decision_text(implied)}"
    return None


def checklist_lines(record: Mapping[str, Any]) -> list[tuple[bool, str, str, str]]:
    """(done, item, time, note) for each Appendix A item."""
    reference = record.get("created_at")
    lines = []
    for raw in _list(record.get("checklist")):
        item = _dict(raw)
        at = format_clock(item.get("at"), reference) if item.get("at") else ""
        lines.append((bool(item.get("done")), _str(item.get("item")), at, _str(item.get("note"))))
    return lines


def backup_rows(record: Mapping[str, Any]) -> list[tuple[str, str]] | None:
    backup = record.get("backup")
    if not isinstance(backup, dict):
        return None
    rows = [("Manifest", _str(backup.get("manifest")) or DASH), ("SHA-256", _str(backup.get("sha256")) or DASH),
            ("Size", format_bytes(backup.get("size"))), ("Created at", _str(backup.get("created_at")) or DASH)]
    if backup.get("host"):
        rows.append(("Host", _str(backup["host"])))
    return rows


def snapshot_rows(record: Mapping[str, Any]) -> list[tuple[str, str]] | None:
    snap = record.get("pre_restore_snapshot")
    if not isinstance(snap, dict):
        return None
    rows = [("Manifest", _str(snap.get("manifest")) or DASH), ("SHA-256", _str(snap.get("sha256")) or DASH)]
    if snap.get("host"):
        rows.append(("Host", _str(snap["host"])))
    if "restored" in snap:
        rows.append(("Restored", describe(_list(snap.get("restored"))) if snap.get("restored") else "none"))
    if "dropped" in snap:
        rows.append(("Dropped", describe(_list(snap.get("dropped"))) if snap.get("dropped") else "none"))
    return rows


def notification_rows(record: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(channel, event, status, sent at, detail) per notification."""
    rows = []
    reference = record.get("created_at")
    for raw in _list(record.get("notifications")):
        note = _dict(raw)
        detail = []
        if note.get("http_status") is not None:
            detail.append(f"HTTP {note['http_status']}")
        if note.get("statuspage_incident_id"):
            detail.append(f"status page incident {note['statuspage_incident_id']}")
        if note.get("error"):
            detail.append(f"error: {note['error']}")
        sent = format_clock(note.get("sent_at"), reference) if note.get("sent_at") else DASH
        rows.append((_str(note.get("channel")), _str(note.get("event")), _str(note.get("status")), sent,
                     "; ".join(detail)))
    return rows


def log_entries(record: Mapping[str, Any]) -> list[tuple[str, str | None, str]]:
    """(label, relative link or None, file) per collected log."""
    entries = []
    for raw in _list(record.get("logs")):
        log = _dict(raw)
        lines = log.get("lines")
        count = f" ({lines} lines)" if isinstance(lines, int) else ""
        label = f"{_str(log.get('host')) or '?'}: {_str(log.get('source')) or '?'}{count}"
        entries.append((label, safe_relative_link(log.get("file")), _str(log.get("file"))))
    return entries


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix or "(value)": value}


def comparison_rows(record: Mapping[str, Any]) -> list[tuple[str, str, str, bool]]:
    """Rollback testing: (key, before, after, same) over the flattened before/after states."""
    rehearsal = _dict(record.get("rehearsal"))
    before, after = rehearsal.get("before"), rehearsal.get("after")
    if not isinstance(before, dict) and not isinstance(after, dict):
        return []
    flat_before, flat_after = _flatten(before or {}), _flatten(after or {})
    flat_before.pop("(value)", None)
    flat_after.pop("(value)", None)
    keys = list(dict.fromkeys([*flat_before, *flat_after]))
    return [(key, format_value(flat_before.get(key)), format_value(flat_after.get(key)),
             flat_before.get(key) == flat_after.get(key) and key in flat_before and key in flat_after)
            for key in keys]


def difference_lines(record: Mapping[str, Any]) -> list[str]:
    return [describe(d) for d in _list(_dict(record.get("rehearsal")).get("differences"))]


def follow_up_rows(record: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """Post-Rollback Actions: (title, text, is placeholder)."""
    follow = _dict(record.get("follow_up"))
    tickets = [_str(t) for t in _list(follow.get("tickets"))]
    rows = [
        ("Root cause analysis", _str(follow.get("root_cause")) or FOLLOW_UP_DEFAULTS["root_cause"],
         not follow.get("root_cause")),
        ("Tickets (issue resolution)", ", ".join(tickets) or FOLLOW_UP_DEFAULTS["tickets"], not tickets),
        ("Deployment retry plan", _str(follow.get("retry_plan")) or FOLLOW_UP_DEFAULTS["retry_plan"],
         not follow.get("retry_plan")),
    ]
    notified = _checklist_item(record, "stakeholders")
    if notified is not None:
        rows.append(("Communication", "stakeholders notified" if notified.get("done") else
                     "stakeholders not notified yet: notify them, update the status page, give a timeline for the "
                     "retry", not notified.get("done")))
    if follow.get("notes"):
        rows.append(("Notes", _str(follow["notes"]), False))
    return rows


def _kind_label(record: Mapping[str, Any]) -> str:
    return "rehearsal" if record.get("kind") == "rehearsal" else "rollback"


def _is_rehearsal(record: Mapping[str, Any]) -> bool:
    return record.get("kind") == "rehearsal" or isinstance(record.get("rehearsal"), dict)


# ---- Markdown --------------------------------------------------------------------------------------

def _md_no_tags(text: str) -> str:
    """``<`` opening a tag becomes ``&lt;``, so record text cannot inject HTML where Markdown allows it."""
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text)


def md_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell: ``|`` escaped, newlines as ``<br>``, no HTML tags."""
    text = _md_no_tags(_str(value)).replace("\\", "\\\\").replace("|", "\\|")
    text = re.sub(r"\r\n|\r|\n", "<br>", text)
    return text.strip() or DASH


def md_text(value: Any) -> str:
    """Text safe on one Markdown line (headings, list items): newlines folded into spaces, no HTML tags."""
    return _md_no_tags(re.sub(r"\s*(?:\r\n|\r|\n)\s*", " ", _str(value)).strip())


def _md_table(headers: list[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(md_cell(cell) for cell in row) + " |" for row in rows]
    return lines


def _md_link_text(value: str) -> str:
    return md_text(value).replace("[", "\\[").replace("]", "\\]")


def _banner(record: Mapping[str, Any], kind: str, status: str) -> list[tuple[str, str]]:
    """The lines under the outcome, for both formats: platform state, where it stopped, what to do next."""
    items: list[tuple[str, str]] = []
    state = _maintenance_line(record)
    if state:
        items.append(("Platform", state))
    stop = _stopped_line(record)
    if stop and status != "succeeded":
        items.append(("Stopped at", stop))
    step = _next_step(record)
    if step:
        items.append(("Next step", step))
    items.append(("Kind", f"{kind}, mode {record.get('mode') or DASH}, {record.get('procedure') or DASH} procedure, "
                          f"{_version_line(record)}"))
    items.append(("Total time", _total_verdict(record)))
    return items


def render_markdown(record: dict[str, Any]) -> str:
    """The incident report as Markdown: outcome and next step first, then the details."""
    record = _dict(record)
    kind = _kind_label(record)
    status = _outcome_status(record)
    outcome = _dict(record.get("outcome"))
    reference = record.get("created_at")
    out: list[str] = [f"# Incident {md_text(record.get('incident_id')) or '?'}: {kind} {md_text(status)}", ""]

    out.append(f"**Outcome: {md_text(status).upper()}**: {md_text(outcome.get('summary')) or 'no summary yet'}")
    out.append("")
    out += [f"- **{label}:** {md_text(text)}" for label, text in _banner(record, kind, status)]
    out.append("")

    out += ["## Summary", ""]
    out += _md_table(["Field", "Value"], summary_rows(record))
    out.append("")

    out += ["## Triggers and decision", ""]
    fired = trigger_rows(record)
    if record.get("triggers") is None:
        out.append("No trigger report was recorded.")
    elif fired:
        out += _md_table(["Trigger fired", "Evidence"], fired)
    else:
        out.append("No trigger fired.")
    not_fired = _not_fired_names(record)
    if not_fired:
        out += ["", f"Not fired: {md_text(', '.join(not_fired))}."]
    source = _dict(record.get("triggers")).get("source")
    if source not in (None, "", {}):
        out += ["", f"Source: {md_text(describe(source))}"]
    decision = decision_line(record)
    out += ["", f"Decision matrix: {md_text(decision) if decision else 'no decision-matrix answer recorded.'}", ""]

    out += ["## Timeline", ""]
    phases = [_dict(p) for p in _list(record.get("phases"))]
    if phases:
        rows = []
        for index, phase in enumerate(phases, 1):
            rows.append([index, _phase_label(phase), format_clock(phase.get("started_at"), reference),
                         format_clock(phase.get("ended_at"), reference), format_duration(phase_duration(phase)),
                         format_estimate(phase.get("estimate")), yes_no(phase_within_estimate(phase)),
                         phase.get("status") or "pending", hosts_changed(phase), phase_notes(phase, reference)])
        out += _md_table(["#", "Phase", "Start", "End", "Duration", "Estimate (Appendix C)", "Within estimate",
                          "Status", "Hosts changed", "Notes"], rows)
    else:
        out.append("No phase recorded yet.")
    out.append("")
    out.append(f"Total time: {_total_verdict(record)}.")
    summed = estimate_sum(phases)
    if summed:
        out.append(f"Sum of the Appendix C estimates of the phases run: {format_estimate(summed)}.")
    out.append("")

    out += ["## Rollback checklist (Appendix A)", ""]
    items = checklist_lines(record)
    for done, item, at, note in items:
        line = f"- [{'x' if done else ' '}] {md_text(item)}"
        if done and at:
            line += f" {DASH} {at}"
        if note:
            line += f" ({md_text(note)})"
        out.append(line)
    if not items:
        out.append("No checklist recorded.")
    out.append("")

    out += ["## Backup", ""]
    backup = backup_rows(record)
    out += _md_table(["Backup used", ""], backup) if backup else ["No backup was used."]
    out.append("")
    snapshot = snapshot_rows(record)
    out += ["### Pre-restore snapshot", ""]
    out += _md_table(["Snapshot", ""], snapshot) if snapshot else ["No pre-restore snapshot was taken."]
    out.append("")

    out += ["## Verifications", ""]
    groups = verification_groups(record)
    if groups:
        counts = verification_counts(record)
        out += [f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped.", ""]
        for label, checks in groups:
            out += [f"### {md_text(label)}", ""]
            out += _md_table(["Check", "Host", "Verdict", "Value", "Threshold", "Detail"], [
                [c.get("name"), c.get("host"), "**FAIL**" if c.get("verdict") == "fail" else c.get("verdict"),
                 format_value(c.get("value"), c.get("unit")), format_value(c.get("threshold"), c.get("unit")),
                 c.get("detail")] for c in checks])
            out.append("")
    else:
        out += ["No verification recorded yet.", ""]

    out += ["## Notifications", ""]
    notes = notification_rows(record)
    out += _md_table(["Channel", "Event", "Status", "Sent at", "Detail"], notes) if notes else ["None sent."]
    out.append("")

    out += ["## Collected logs", ""]
    logs = log_entries(record)
    for label, link, file in logs:
        out.append(f"- [{_md_link_text(label)}]({link})" if link else f"- {md_text(label)}: {md_text(file)}")
    if not logs:
        out.append("No logs collected.")
    out.append("")

    if _is_rehearsal(record):
        out += _markdown_rehearsal(record)

    out += ["## Follow-up (Post-Rollback Actions)", ""]
    for title, text, placeholder in follow_up_rows(record):
        out.append(f"- **{title}:** {'_' + md_text(text) + '_' if placeholder else md_text(text)}")
    out.append("")
    return "\n".join(out)


def _markdown_rehearsal(record: Mapping[str, Any]) -> list[str]:
    rehearsal = _dict(record.get("rehearsal"))
    out = ["## Rollback testing", ""]
    out.append(f"- **Returned to the previous state:** {yes_no(rehearsal.get('returned_to_previous_state'))}")
    if rehearsal.get("deployed_version"):
        out.append(f"- **Deployed (then rolled back):** {md_text(rehearsal['deployed_version'])}")
    out.append(f"- **Time to complete the rollback:** {format_duration(total_duration(record))}")
    out.append("")
    rows = comparison_rows(record)
    if rows:
        out += _md_table(["State", "Before the deploy", "After the rollback", "Same"],
                         [(k, b, a, "yes" if same else "**no**") for k, b, a, same in rows])
        out.append("")
    differences = difference_lines(record)
    out.append("Differences:" if differences else "Differences: none.")
    out += [f"- {md_text(d)}" for d in differences]
    out += ["", "### Process refinement: bottlenecks", ""]
    entries = bottlenecks(record)
    out += [f"- {md_text(_bottleneck_line(e))}" for e in entries] or ["No phase timings recorded yet."]
    out.append("")
    return out


# ---- HTML ------------------------------------------------------------------------------------------

def _e(value: Any) -> str:
    return html.escape(_str(value), quote=True)


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1100px;
padding:0 1rem;color:#212121;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.3rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
h3{font-size:1rem}
table{border-collapse:collapse;margin:.5rem 0;width:100%}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}
th{background:#f5f5f5}
.outcome{padding:.8rem 1rem;border-radius:6px;border-left:8px solid #999;background:#fafafa}
.outcome.succeeded{border-color:#2e7d32;background:#e8f5e9}.outcome.failed{border-color:#c62828;background:#ffebee}
.outcome.interrupted{border-color:#ef6c00;background:#fff3e0}.outcome.in_progress{border-color:#1565c0;
background:#e3f2fd}.outcome.nothing_to_do{border-color:#9e9e9e}
.outcome p{margin:.25rem 0}
tr.fail td{background:#ffebee}.verdict-fail{color:#c62828;font-weight:bold}.verdict-pass{color:#2e7d32}
.verdict-skip{color:#757575}
.status-ok{color:#2e7d32}.status-failed{color:#c62828;font-weight:bold}.status-interrupted{color:#ef6c00}
.status-skipped,.status-pending{color:#757575}.status-running{color:#1565c0}
ul.checklist{list-style:none;padding-left:0}ul.checklist li{margin:.15rem 0}
.placeholder{font-style:italic;color:#6d4c41}
.gantt{width:100%;height:auto;border:1px solid #eee}
code{font-size:.85rem;word-break:break-all}
"""


def _html_kv_table(rows: Iterable[tuple[str, str]], css_class: str = "kv") -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="{css_class}"><tbody>{body}</tbody></table>'


def _html_table(headers: list[str], rows: Iterable[Iterable[str]], row_classes: Iterable[str] | None = None) -> str:
    """A table; cells are already-escaped HTML."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    classes = list(row_classes) if row_classes is not None else None
    body = []
    for index, row in enumerate(rows):
        attr = f' class="{_e(classes[index])}"' if classes and classes[index] else ""
        body.append(f"<tr{attr}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(record: dict[str, Any]) -> str:
    """The incident report as one self-contained HTML5 page (inline CSS and SVG, no script, nothing external)."""
    record = _dict(record)
    kind = _kind_label(record)
    status = _outcome_status(record)
    outcome = _dict(record.get("outcome"))
    reference = record.get("created_at")
    incident = _str(record.get("incident_id")) or "?"
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Incident {_e(incident)}: {_e(kind)} {_e(status)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Incident {_e(incident)}: {_e(kind)} {_e(status)}</h1>",
    ]
    banner = [f"<p><strong>Outcome: {_e(status.upper())}</strong>: "
              f"{_e(outcome.get('summary') or 'no summary yet')}</p>"]
    banner += [f"<p><strong>{_e(label)}:</strong> {_e(text)}</p>" for label, text in _banner(record, kind, status)]
    parts.append(f'<section class="outcome {_e(status)}">{"".join(banner)}</section>')

    parts.append("<h2>Summary</h2>")
    parts.append(_html_kv_table(summary_rows(record)))

    parts.append("<h2>Triggers and decision</h2>")
    fired = trigger_rows(record)
    if record.get("triggers") is None:
        parts.append("<p>No trigger report was recorded.</p>")
    elif fired:
        parts.append(_html_table(["Trigger fired", "Evidence"], [[_e(n), _e(ev)] for n, ev in fired]))
    else:
        parts.append("<p>No trigger fired.</p>")
    not_fired = _not_fired_names(record)
    if not_fired:
        parts.append(f"<p>Not fired: {_e(', '.join(not_fired))}.</p>")
    source = _dict(record.get("triggers")).get("source")
    if source not in (None, "", {}):
        parts.append(f"<p>Source: {_e(describe(source))}</p>")
    decision = decision_line(record)
    parts.append(f"<p>Decision matrix: {_e(decision or 'no decision-matrix answer recorded.')}</p>")

    parts.append("<h2>Timeline</h2>")
    parts.append(gantt_svg(record))
    phases = [_dict(p) for p in _list(record.get("phases"))]
    if phases:
        rows, classes = [], []
        for index, phase in enumerate(phases, 1):
            phase_status = _str(phase.get("status")) or "pending"
            rows.append([_e(index), _e(_phase_label(phase)), _e(format_clock(phase.get("started_at"), reference)),
                         _e(format_clock(phase.get("ended_at"), reference)), _e(format_duration(phase_duration(phase))),
                         _e(format_estimate(phase.get("estimate"))), _e(yes_no(phase_within_estimate(phase))),
                         f'<span class="status-{_e(phase_status)}">{_e(phase_status)}</span>',
                         _e(hosts_changed(phase)), _e(phase_notes(phase, reference))])
            classes.append("fail" if phase_status == "failed" else "")
        parts.append(_html_table(["#", "Phase", "Start", "End", "Duration", "Estimate (Appendix C)",
                                  "Within estimate", "Status", "Hosts changed", "Notes"], rows, classes))
    else:
        parts.append("<p>No phase recorded yet.</p>")
    parts.append(f"<p>Total time: {_e(_total_verdict(record))}.</p>")
    summed = estimate_sum(phases)
    if summed:
        parts.append(f"<p>Sum of the Appendix C estimates of the phases run: {_e(format_estimate(summed))}.</p>")

    parts.append("<h2>Rollback checklist (Appendix A)</h2>")
    items = checklist_lines(record)
    if items:
        lis = []
        for done, item, at, note in items:
            text = f"{'&#9745;' if done else '&#9744;'} {_e(item)}"
            if done and at:
                text += f" {DASH} {_e(at)}"
            if note:
                text += f" ({_e(note)})"
            lis.append(f'<li class="{"done" if done else "open"}">{text}</li>')
        parts.append(f'<ul class="checklist">{"".join(lis)}</ul>')
    else:
        parts.append("<p>No checklist recorded.</p>")

    parts.append("<h2>Backup</h2>")
    backup = backup_rows(record)
    parts.append(_html_kv_table(backup) if backup else "<p>No backup was used.</p>")
    parts.append("<h3>Pre-restore snapshot</h3>")
    snapshot = snapshot_rows(record)
    parts.append(_html_kv_table(snapshot) if snapshot else "<p>No pre-restore snapshot was taken.</p>")

    parts.append("<h2>Verifications</h2>")
    groups = verification_groups(record)
    if groups:
        counts = verification_counts(record)
        parts.append(f"<p>{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped.</p>")
        for label, checks in groups:
            parts.append(f"<h3>{_e(label)}</h3>")
            rows = []
            for check in checks:
                verdict = _str(check.get("verdict"))
                rows.append([_e(check.get("name")), _e(check.get("host")),
                             f'<span class="verdict-{_e(verdict)}">{_e(verdict.upper() or DASH)}</span>',
                             _e(format_value(check.get("value"), check.get("unit"))),
                             _e(format_value(check.get("threshold"), check.get("unit"))),
                             _e(check.get("detail") or "")])
            parts.append(_html_table(["Check", "Host", "Verdict", "Value", "Threshold", "Detail"], rows,
                                     ["fail" if c.get("verdict") == "fail" else "" for c in checks]))
    else:
        parts.append("<p>No verification recorded yet.</p>")

    parts.append("<h2>Notifications</h2>")
    notes = notification_rows(record)
    parts.append(_html_table(["Channel", "Event", "Status", "Sent at", "Detail"],
                             [[_e(c) for c in row] for row in notes]) if notes else "<p>None sent.</p>")

    parts.append("<h2>Collected logs</h2>")
    logs = log_entries(record)
    if logs:
        lis = [f'<li><a href="{_e(link)}">{_e(label)}</a></li>' if link else
               f"<li>{_e(label)}: <code>{_e(file)}</code></li>" for label, link, file in logs]
        parts.append(f"<ul>{''.join(lis)}</ul>")
    else:
        parts.append("<p>No logs collected.</p>")

    if _is_rehearsal(record):
        parts.append(_html_rehearsal(record))

    parts.append("<h2>Follow-up (Post-Rollback Actions)</h2><ul>")
    for title, text, placeholder in follow_up_rows(record):
        body = f'<span class="placeholder">{_e(text)}</span>' if placeholder else _e(text)
        parts.append(f"<li><strong>{_e(title)}:</strong> {body}</li>")
    parts.append("</ul>")
    parts.append(f"<footer><p>Generated by rollbackctl from incident.json (updated "
                 f"{_e(record.get('updated_at') or DASH)}).</p></footer>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_rehearsal(record: Mapping[str, Any]) -> str:
    rehearsal = _dict(record.get("rehearsal"))
    parts = ["<h2>Rollback testing</h2><ul>",
             f"<li><strong>Returned to the previous state:</strong> "
             f"{_e(yes_no(rehearsal.get('returned_to_previous_state')))}</li>"]
    if rehearsal.get("deployed_version"):
        parts.append(f"<li><strong>Deployed (then rolled back):</strong> {_e(rehearsal['deployed_version'])}</li>")
    parts.append(f"<li><strong>Time to complete the rollback:</strong> {_e(format_duration(total_duration(record)))}"
                 "</li></ul>")
    rows = comparison_rows(record)
    if rows:
        parts.append(_html_table(["State", "Before the deploy", "After the rollback", "Same"],
                                 [[_e(k), _e(b), _e(a), "yes" if same else "<strong>no</strong>"]
                                  for k, b, a, same in rows],
                                 ["" if same else "fail" for *_, same in rows]))
    differences = difference_lines(record)
    if differences:
        parts.append("<p>Differences:</p><ul>" + "".join(f"<li>{_e(d)}</li>" for d in differences) + "</ul>")
    else:
        parts.append("<p>Differences: none.</p>")
    parts.append("<h3>Process refinement: bottlenecks</h3>")
    entries = bottlenecks(record)
    if entries:
        parts.append("<ul>" + "".join(f"<li>{_e(_bottleneck_line(e))}</li>" for e in entries) + "</ul>")
    else:
        parts.append("<p>No phase timings recorded yet.</p>")
    return "".join(parts)


# ---- the timeline chart ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Segment:
    """One attempt of a phase on the timeline, in seconds from the chart's origin."""

    start: float
    end: float
    status: str
    attempt: int
    attempts: int
    open_ended: bool = False


def attempt_segments(phase: Mapping[str, Any], origin: dt.datetime,
                     now: dt.datetime | None = None) -> list[Segment]:
    """The bars of a phase: one per attempt (or one for the phase when it has no attempts), none when pending.

    An attempt without an end (running, or the process died) ends at ``now`` (the record's updated_at) and is
    ``open_ended``.
    """
    attempts = [_dict(a) for a in _list(phase.get("attempts"))]
    spans = [(a.get("started_at"), a.get("ended_at"), _str(a.get("status")) or "running") for a in attempts]
    if not spans and phase.get("started_at"):
        spans = [(phase.get("started_at"), phase.get("ended_at"), _str(phase.get("status")) or "running")]
    segments = []
    for index, (start_ts, end_ts, status) in enumerate(spans, 1):
        start = parse_timestamp(start_ts)
        if start is None:
            continue
        end = parse_timestamp(end_ts)
        open_ended = end is None
        if end is None:
            end = now if now is not None and now >= start else start
        segments.append(Segment((start - origin).total_seconds(), (max(end, start) - origin).total_seconds(),
                                status, index, len(spans), open_ended))
    return segments


_TICK_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]


def axis_ticks(span_seconds: float, max_ticks: int = 8) -> list[tuple[float, str]]:
    """Ticks from 0 to the span: ``(seconds, label)``, labels in s, m:ss, min or h as suits the span."""
    span = max(float(span_seconds), 1.0)
    smallest = 3600 if span >= 7200 else 1  # long runs: whole hours
    step = next((s for s in _TICK_STEPS if s >= smallest and span / s <= max_ticks), _TICK_STEPS[-1])
    while span / step > max_ticks:
        step *= 2
    ticks = []
    value = 0
    while value <= span + 1e-9:
        if step < 60 and span < 60:
            label = f"{value} s"
        elif step < 60:
            label = f"{value // 60}:{value % 60:02d}"
        elif step < 3600:
            label = f"{value // 60} min"
        else:
            hours, rest = divmod(value, 3600)
            label = f"{hours} h" if not rest else f"{hours} h {rest // 60:02d}"
        ticks.append((float(value), label))
        value += step
    return ticks


def _estimate_seconds(phase: Mapping[str, Any]) -> tuple[float, float] | None:
    bounds = estimate_range(phase.get("estimate"))
    return None if bounds is None else (bounds[0] * 60, bounds[1] * 60)


def _f(value: float) -> str:
    return f"{value:.1f}"


def _shorten(text: str, limit: int = 34) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def gantt_svg(record: Mapping[str, Any]) -> str:
    """The timeline as an inline SVG Gantt chart (well-formed XML), or a paragraph when there is nothing to draw.

    One row per phase: a bar per attempt from its start to its end, coloured by status; the Appendix C estimate
    as a band from phase start + minimum to phase start + maximum (a dashed lead from the start to the
    minimum); the axis in elapsed time from the first phase start. Estimates reaching far beyond the actual
    run (a fast sandbox rehearsal) are cut at the right edge and marked with an arrow.
    """
    record = _dict(record)
    phases = [_dict(p) for p in _list(record.get("phases"))]
    if not phases:
        return '<p class="gantt-empty">No phase recorded yet: nothing to chart.</p>'
    starts = []
    for phase in phases:
        for ts in [phase.get("started_at"), *(_dict(a).get("started_at") for a in _list(phase.get("attempts")))]:
            moment = parse_timestamp(ts)
            if moment is not None:
                starts.append(moment)
    if not starts:
        return '<p class="gantt-empty">No phase has started yet: nothing to chart.</p>'
    origin = min(starts)
    now = parse_timestamp(record.get("updated_at"))
    rows = []
    actual_end = 0.0
    estimate_end = 0.0
    for phase in phases:
        segments = attempt_segments(phase, origin, now)
        estimate = _estimate_seconds(phase)
        if segments:
            actual_end = max(actual_end, *(s.end for s in segments))
            if estimate:
                estimate_end = max(estimate_end, segments[0].start + estimate[1])
        rows.append((phase, segments, estimate))
    span = actual_end if actual_end > 0 else max(estimate_end, 60.0)
    if estimate_end > span:
        span = min(estimate_end, span * 3)
    span = max(span, 1.0)

    label_w, chart_w, info_w = 250.0, 560.0, 290.0
    top, row_h = 34.0, 30.0
    height = top + row_h * len(rows) + 40.0
    width = label_w + chart_w + info_w

    def x(seconds: float) -> float:
        return label_w + min(max(seconds, 0.0), span) / span * chart_w

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="gantt" viewBox="0 0 {_f(width)} {_f(height)}" '
           f'width="{_f(width)}" height="{_f(height)}" role="img" '
           f'aria-label="Timeline of the phases against their Appendix C estimates" '
           f'font-family="sans-serif" font-size="12">',
           f"<title>Timeline from {_e(format_clock(origin.strftime('%Y-%m-%dT%H:%M:%SZ')))}: bars are the phase "
           f"attempts, bands the Appendix C estimates</title>"]
    bottom = top + row_h * len(rows)
    for seconds, label in axis_ticks(span):
        tx = x(seconds)
        out.append(f'<line class="tick" x1="{_f(tx)}" y1="{_f(top - 6)}" x2="{_f(tx)}" y2="{_f(bottom)}" '
                   f'stroke="#e0e0e0" stroke-width="1"/>')
        out.append(f'<text class="tick-label" x="{_f(tx)}" y="{_f(top - 10)}" text-anchor="middle" '
                   f'fill="#616161">{_e(label)}</text>')
    for index, (phase, segments, estimate) in enumerate(rows):
        y = top + index * row_h
        status = _str(phase.get("status")) or "pending"
        title = _phase_label(phase)
        duration = phase_duration(phase)
        if index % 2:
            out.append(f'<rect class="row" x="0" y="{_f(y)}" width="{_f(width)}" height="{_f(row_h)}" '
                       f'fill="#fafafa"/>')
        out.append(f'<text class="phase-label" x="{_f(label_w - 8)}" y="{_f(y + 18)}" text-anchor="end">'
                   f"<title>{_e(title)}</title>{_e(_shorten(title))}</text>")
        if estimate and segments:
            start = segments[0].start
            low, high = start + estimate[0], start + estimate[1]
            est_text = (f"{title}: Appendix C estimate {format_estimate(phase.get('estimate'))}, "
                        f"actual {format_duration(duration)}")
            clipped = high > span
            if clipped:
                est_text += " (the estimate reaches beyond the chart)"
            band_y = y + row_h * 0.68
            if estimate[0] > 0:
                out.append(f'<line class="estimate-lead" x1="{_f(x(start))}" y1="{_f(band_y + 3)}" '
                           f'x2="{_f(x(low))}" y2="{_f(band_y + 3)}" stroke="{ESTIMATE_COLOUR}" stroke-width="1" '
                           f'stroke-dasharray="3,3"/>')
            band_w = max(x(high) - x(low), 2.0)
            band_x = min(x(low), label_w + chart_w - band_w)
            out.append(f'<rect class="estimate" x="{_f(band_x)}" y="{_f(band_y)}" width="{_f(band_w)}" height="6" '
                       f'fill="{ESTIMATE_COLOUR}" '
                       f'fill-opacity="0.35" stroke="{ESTIMATE_COLOUR}" stroke-width="0.5">'
                       f"<title>{_e(est_text)}</title></rect>")
            if clipped:
                edge = label_w + chart_w
                out.append(f'<path class="estimate-clipped" d="M{_f(edge)},{_f(band_y - 2)} L{_f(edge + 7)},'
                           f'{_f(band_y + 3)} L{_f(edge)},{_f(band_y + 8)} Z" fill="{ESTIMATE_COLOUR}"/>')
        for segment in segments:
            colour = STATUS_COLOURS.get(segment.status, STATUS_COLOURS["pending"])
            left = x(segment.start)
            bar_w = max(x(segment.end) - left, 2.0)
            tip = (f"{title}: attempt {segment.attempt}/{segment.attempts} {segment.status}, "
                   f"{format_duration(segment.end - segment.start)}"
                   f"{' so far (no end recorded)' if segment.open_ended else ''}")
            out.append(f'<rect class="bar status-{_e(segment.status)}" data-attempt="{segment.attempt}" '
                       f'x="{_f(left)}" y="{_f(y + 5)}" width="{_f(bar_w)}" height="{_f(row_h * 0.5)}" rx="2" '
                       f'fill="{colour}"><title>{_e(tip)}</title></rect>')
        if duration is not None:
            info = f"{status} {format_duration(duration)}"
        elif segments:
            info = f"{status} {format_duration(sum(seg.end - seg.start for seg in segments))} so far"
        else:
            info = status
        if estimate:
            info += f" (est. {format_estimate(phase.get('estimate'))})"
        if len(segments) > 1:
            info += f", {len(segments)} attempts"
        out.append(f'<text class="phase-info status-{_e(status)}" x="{_f(label_w + chart_w + 12)}" '
                   f'y="{_f(y + 18)}" fill="{TEXT_COLOURS.get(status, "#424242")}">{_e(info)}</text>')
    legend_y = bottom + 24
    legend_x = label_w
    for name in ("ok", "failed", "interrupted", "skipped", "running"):
        out.append(f'<rect class="legend" x="{_f(legend_x)}" y="{_f(legend_y - 9)}" width="10" height="10" '
                   f'fill="{STATUS_COLOURS[name]}"/>')
        out.append(f'<text x="{_f(legend_x + 14)}" y="{_f(legend_y)}">{name}</text>')
        legend_x += 90
    out.append(f'<rect class="legend" x="{_f(legend_x)}" y="{_f(legend_y - 6)}" width="18" height="6" '
               f'fill="{ESTIMATE_COLOUR}" fill-opacity="0.35"/>')
    out.append(f'<text x="{_f(legend_x + 22)}" y="{_f(legend_y)}">Appendix C estimate (min..max)</text>')
    out.append("</svg>")
    return "".join(out)


# ---- output ----------------------------------------------------------------------------------------

def render(record: dict[str, Any], fmt: str = "md") -> str:
    """``render_markdown`` or ``render_html`` by format name (``md`` / ``html``)."""
    if fmt == "html":
        return render_html(record)
    if fmt == "md":
        return render_markdown(record)
    raise ValueError(f"unknown report format {fmt!r}: md or html")


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename (0644)."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise RollbackctlError(f"cannot write the report to {target}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def load_record(incident_id: str, incidents_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """The record of an incident; IncidentNotFound when the id is malformed or unknown."""
    folder = paths.incident_path(incident_id, incidents_dir)
    source = folder / "incident.json"
    try:
        record = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RollbackctlError(f"cannot read the incident record {source}: {exc}") from exc
    if not isinstance(record, dict):
        raise RollbackctlError(f"{source} is not an incident record (not a JSON object)")
    return record


def _format_for(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    output = _str(getattr(args, "output", None)).lower()
    return "html" if output.endswith((".html", ".htm")) else "md"


def cmd_report(args: argparse.Namespace) -> int:
    """``rollbackctl report``: render the record of INCIDENT_ID to --output (atomically) or stdout."""
    record = load_record(args.incident_id, getattr(args, "incidents_dir", None))
    text = render(record, _format_for(args))
    output = getattr(args, "output", None)
    if output and output != "-":
        target = write_atomic(output, text)
        print(f"report written to {target}", file=sys.stderr)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return 0


REPORT_DESCRIPTION = f"""\
Render the incident record of a rollback (or rehearsal) for people: outcome and next step first, the
summary (who decided, why, database decision), the triggers and the decision-matrix row, the phases
against the plan's Appendix C estimates, the Appendix A checklist, the backup, the verifications, the
notifications, the collected logs and the Post-Rollback Actions still to do.

Records live in <incidents dir>/<INCIDENT_ID>/incident.json; the incidents dir is --incidents-dir,
else ${paths.INCIDENTS_ENV}, else incidents/ in the project.
"""

REPORT_EPILOG = """\
examples:
  rollbackctl report 20240501-1604-rollback
      Markdown on stdout (the same text as incident.md in the incident folder)
  rollbackctl report 20240501-1604-rollback -o report.html
      one self-contained HTML page with a timeline chart of the phases against their estimates

exit codes:
  0  report written
  1  error (unreadable record, output folder missing)
  2  no such incident, or a malformed incident id
"""


def add_report_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``report INCIDENT_ID [--format md|html] [--output FILE] [--incidents-dir DIR]``."""
    parser = subparsers.add_parser(
        "report",
        help="render an incident record as Markdown or a self-contained HTML page",
        description=REPORT_DESCRIPTION,
        epilog=REPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("incident_id", metavar="INCIDENT_ID",
                        help="the incident folder's name (letters, digits, '.', '_' and '-')")
    parser.add_argument("--format", choices=["md", "html"], default=None,
                        help="md (Markdown, the default) or html (inline CSS and SVG timeline, no script); "
                             "default: html when --output ends in .html, else md")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="write the report to FILE (atomically: temporary file and rename); default or '-': stdout")
    parser.add_argument("--incidents-dir", metavar="DIR", default=None,
                        help=f"where incident records live (default: ${paths.INCIDENTS_ENV}, else incidents/ in "
                             "the project)")
    parser.set_defaults(func=cmd_report)
    return parser
