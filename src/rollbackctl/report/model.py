"""The report's view-model: what an incident record says, as text, built once per rendering.

`build(record)` validates the record against the shipped schema, then reads it as the schema
guarantees it: required fields are there with their types. Nullable fields are null in the records of
failed, interrupted or just-started runs and become "—" (em dash) or "not yet" here; optional fields
(absent in older records) are read with ``get``. Free-form parts the schema leaves open (the trigger
report, the decision, the rehearsal states) are described whatever their shape.

Each report section is one function of the record returning plain text (escaped by the templates):
a new section is one function here and one block in each template. The record queries behind the
sections (timings, where a run stopped, maintenance mode, bottlenecks) are in `queries`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import phases
from ..errors import RecordUnreadable
from ..record import schema_problems
from .format import (
    ARROW,
    DASH,
    describe,
    format_bytes,
    format_clock,
    format_duration,
    format_estimate,
    format_value,
    safe_relative_link,
    yes_no,
)
from .people import PeopleView, people_section
from .queries import (
    Record,
    bottlenecks,
    checklist_item,
    estimate_sum,
    maintenance_state,
    phase_duration,
    phase_label,
    phase_within_estimate,
    stopped_at,
    total_duration,
    verification_counts,
    verification_groups,
)


def _text(value: Any) -> str:
    """A free-form value (the parts of a record the schema leaves open) as text; None is empty."""
    return "" if value is None else str(value)


#: The plan's Appendix C "Total estimated time": 1-2 hours.
TOTAL_ESTIMATE: dict[str, Any] = phases.TOTAL_ESTIMATE

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


def attempts_note(phase: Record, reference: Any = None) -> str:
    """``2 attempts; attempt 1 interrupted 16:04:05Z-16:06:00Z (error)``; empty for one clean attempt."""
    attempts = phase["attempts"]
    notes = [f"{len(attempts)} attempts"] if len(attempts) > 1 else []
    for index, attempt in enumerate(attempts, 1):
        status = attempt["status"]
        if status not in ("interrupted", "failed"):
            continue
        if len(attempts) == 1 and status == phase["status"]:
            continue  # the phase's own status and error say it already
        when = "-".join(format_clock(attempt[key], reference) for key in ("started_at", "ended_at"))
        error = f" ({attempt['error']})" if attempt.get("error") else ""
        notes.append(f"attempt {index} {status} {when}{error}")
    return "; ".join(notes)


def phase_notes(phase: Record, reference: Any = None) -> str:
    """Attempts, error and note of a phase, one line."""
    parts = [attempts_note(phase, reference)]
    if phase["error"]:
        parts.append(f"error: {phase['error']}")
    if phase["note"]:
        parts.append(phase["note"])
    return "; ".join(p for p in parts if p)


def hosts_changed(phase: Record) -> str:
    """``web1, web2 (3 changes)``, ``none``."""
    changed = phase["changed"]
    count = f" ({changed} change{'s' if changed != 1 else ''})" if changed else ""
    return (", ".join(phase["hosts_changed"]) or "none") + count


# ---- the sections ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PhaseRow:
    """One row of the timeline table."""

    index: int
    title: str
    start: str
    end: str
    duration: str
    estimate: str
    within: str
    status: str
    hosts: str
    notes: str


@dataclass(frozen=True)
class CheckRow:
    """One verification; `detail` stays None when the check has none (the formats show it differently)."""

    name: str
    host: str
    verdict: str
    value: str
    threshold: str
    detail: str | None


@dataclass(frozen=True)
class LogEntry:
    """One collected log: its label, a safe relative link (None: shown as text) and the file."""

    label: str
    link: str | None
    file: str


@dataclass(frozen=True)
class Rehearsal:
    """Rollback testing: did the platform return to its state before the deploy, and where time went."""

    returned: str
    deployed: str | None
    duration: str
    comparison: list[tuple[str, str, str, bool]]
    differences: list[str]
    bottlenecks: list[str]


def next_step(record: Record) -> str | None:
    """The recorded next step, else the default for the outcome; None after a success."""
    outcome = record["outcome"]
    if outcome["next_step"]:
        return outcome["next_step"]
    if outcome["status"] == "succeeded":
        return None
    return DEFAULT_NEXT_STEP.get(outcome["status"], "not recorded")


def total_verdict(record: Record) -> str:
    """The run's total time against the plan's total estimated time."""
    total = total_duration(record)
    plan = format_estimate(TOTAL_ESTIMATE)
    if total is None:
        return f"{DASH} (plan: {plan})"
    so_far = {"in_progress": " so far", "failed": " until it stopped", "interrupted": " until it stopped"}.get(
        record["outcome"]["status"], "")
    limit = TOTAL_ESTIMATE["max_minutes"] * 60
    verdict = "within the estimate" if total <= limit else f"over the estimate by {format_duration(total - limit)}"
    return f"{format_duration(total)}{so_far} vs the plan's total estimated time of {plan}: {verdict}"


def version_line(record: Record) -> str:
    return f"{record['from_version'] or '?'} {ARROW} {record['to_version'] or '?'}"


def banner(record: Record, kind: str) -> list[tuple[str, str]]:
    """The lines under the outcome: platform state, where it stopped, what to do next, kind, total time."""
    items: list[tuple[str, str]] = []
    state = maintenance_state(record)
    if state == "on":
        items.append(("Platform", "maintenance mode is ON: users see the maintenance page"))
    elif state == "off":
        items.append(("Platform", "maintenance mode is off: users are served"))
    elif record["mode"] == "check":
        items.append(("Platform", "check mode (dry run): nothing was changed on the platform"))
    stop = stopped_at(record)
    if stop is not None and record["outcome"]["status"] != "succeeded":
        error = f": {stop['error']}" if stop["error"] else ""
        items.append(("Stopped at", f"{phase_label(stop)} ({stop['status']}){error}"))
    step = next_step(record)
    if step:
        items.append(("Next step", step))
    items.append(("Kind", f"{kind}, mode {record['mode']}, {record['procedure']} procedure, {version_line(record)}"))
    items.append(("Total time", total_verdict(record)))
    return items


def _environment_line(record: Record) -> str:
    env = record["environment"]
    name, inventory = env.get("name") or "", env["inventory"]
    head = f"{name} (inventory {inventory})" if name and inventory else (name or inventory or DASH)
    groups = "; ".join(f"{group}: {', '.join(members)}" for group, members in (env.get("hosts") or {}).items())
    return f"{head}; hosts {groups}" if groups else head


def _authority_rows(record: Record) -> list[tuple[str, str]]:
    auth = record["authority"]
    basis = AUTHORITY_BASIS[auth["basis"]]
    if auth.get("consensus"):
        basis += f": {describe(auth['consensus'])}"
    rows = [("Decided by", auth["decided_by"] or DASH), ("Role", auth["role"] or DASH), ("Basis of authority", basis)]
    if auth.get("approved_by"):
        rows.append(("Approved by", describe(auth["approved_by"])))
    if auth.get("explanation"):
        rows.append(("Authority check", auth["explanation"]))
    return rows


def _database_line(record: Record) -> str:
    db = record["database"]
    decision = {True: "restore the database", False: "code only, no database restore"}.get(db["restore"],
                                                                                             "not decided yet")
    parts = [f"{decision} (requested: {db['requested']})"]
    if db["reason"]:
        parts.append(f"why: {db['reason']}")
    schema, target = db.get("database_schema"), db.get("target_schema")
    if schema is not None or target is not None:
        parts.append(f"schema: database {DASH if schema is None else schema}, "
                     f"target release {DASH if target is None else target}")
    if db.get("backup_name"):
        parts.append(f"backup {db['backup_name']}")
    return "; ".join(parts)


def _departure_rows(record: Record) -> list[tuple[str, str]]:
    """The steps of the plan this run left out deliberately (zero-downtime: no maintenance window)."""
    return [("Departure from the plan",
             f"{d['step']} left out, chosen by {d['chosen_by']} at {d['at']}: {d['what']} ({d['why']})")
            for d in record.get("departures") or []]


def summary_rows(record: Record) -> list[tuple[str, str]]:
    """The summary table: (field, value) pairs."""
    mode = "check (dry run: nothing changed)" if record["mode"] == "check" else record["mode"]
    return [
        ("Environment", _environment_line(record)),
        ("Procedure", record["procedure"]),
        ("Mode", mode),
        ("Version", version_line(record)),
        ("Reason", record["reason"] or DASH),
        *_authority_rows(record),
        ("Database decision", _database_line(record)),
        *_departure_rows(record),
        ("Started", record["created_at"]),
        ("Last updated", record["updated_at"]),
        ("Recorded by", record["writer"]),
    ]


_TRIGGER_NAMES = ("name", "trigger", "id", "title")
_TRIGGER_SHOWN = {*_TRIGGER_NAMES, "description", "category", "group", "issue_type", "severity", "evidence",
                  "detail", "message", "value", "threshold", "unit", "fired", "missing_decided"}


def _trigger_name(trigger: Mapping[str, Any]) -> str:
    key = next((k for k in _TRIGGER_NAMES if trigger.get(k)), None)
    return str(trigger[key]) if key else "(unnamed trigger)"


def _trigger_fields(trigger: Any) -> tuple[str, str]:
    """(trigger, evidence) of one fired trigger, whatever its shape (the schema leaves it open).

    Knows the `rollbackctl triggers` form (``name``, ``category``, ``description``, ``issue_type``,
    ``severity``, ``evidence: {reason, ...}``) and simpler ones (a string; ``value``/``threshold``/``unit``).
    """
    if not isinstance(trigger, dict):
        return describe(trigger), ""
    name = _trigger_name(trigger)
    if trigger.get("description"):
        name = f"{name}: {trigger['description']}"
    meta = [_text(trigger.get("category") or trigger.get("group"))]
    if trigger.get("issue_type") or trigger.get("severity"):
        meta.append(f"{_text(trigger.get('issue_type')) or '?'}/{_text(trigger.get('severity')) or '?'}")
    meta = [m for m in meta if m]
    if meta:
        name = f"{name} ({', '.join(meta)})"
    evidence_parts = []
    evidence = trigger.get("evidence")
    if isinstance(evidence, dict):
        if evidence.get("reason"):
            evidence_parts.append(_text(evidence["reason"]))
            if evidence.get("policy_applied"):
                evidence_parts.append(f"missing data decided by the {evidence['policy_applied']} policy")
        elif evidence:
            evidence_parts.append(describe(evidence))
    elif evidence not in (None, "", []):
        evidence_parts.append(describe(evidence))
    evidence_parts += [describe(trigger[key]) for key in ("detail", "message") if trigger.get(key)]
    if "value" in trigger or "threshold" in trigger:
        unit = trigger.get("unit")
        evidence_parts.append(f"value {format_value(trigger.get('value'), unit)}, "
                              f"threshold {format_value(trigger.get('threshold'), unit)}")
    rest = {k: v for k, v in trigger.items() if k not in _TRIGGER_SHOWN}
    if rest:
        evidence_parts.append(describe(rest))
    return name, "; ".join(evidence_parts)


def decision_text(decision: Mapping[str, Any]) -> str:
    """A decision-matrix answer (`rollbackctl decide`) as one line: answer, status, row, procedure, why."""
    answer = _text(decision.get("decision")).replace("_", " ") or "no automatic answer"
    parts = [f"{answer} (status: {_text(decision.get('status')).replace('_', ' ') or DASH})"]
    row = decision.get("row")
    if isinstance(row, int) and not isinstance(row, bool):
        parts.append(f"matrix row {row}: {decision['row_text']}" if decision.get("row_text") else f"matrix row {row}")
    elif row not in (None, {}, [], ""):
        parts.append(f"matrix row: {describe(row)}")
    elif decision.get("issue_type") or decision.get("severity"):
        parts.append(f"no matrix row for {_text(decision.get('issue_type')) or '?'}/"
                     f"{_text(decision.get('severity')) or '?'}")
    if decision.get("fix_estimate"):
        parts.append(f"fix estimate {decision['fix_estimate']}")
    if decision.get("procedure"):
        parts.append(f"{decision['procedure']} procedure")
    if decision.get("database_restore"):
        parts.append(f"database restore: {decision['database_restore']}")
    if decision.get("explanation"):
        parts.append(f"why: {decision['explanation']}")
    return "; ".join(str(p) for p in parts)


def decision_line(record: Record) -> str | None:
    """The decision-matrix answer recorded for the run, else the one the triggers implied; None when neither."""
    if record["decision"] is not None:
        return decision_text(record["decision"])
    triggers = record["triggers"] or {}
    implied = triggers.get("implied")
    if isinstance(implied, dict):
        by = f" (most urgent trigger: {triggers['implied_by']})" if triggers.get("implied_by") else ""
        return f"implied by the triggers{by}: {decision_text(implied)}"
    return None


@dataclass(frozen=True)
class Triggers:
    """The trigger report: recorded at all, what fired (with evidence), what did not, its source."""

    recorded: bool
    fired: list[tuple[str, str]]
    not_fired: list[str]
    source: str | None
    decision: str | None


def triggers_section(record: Record) -> Triggers:
    report = record["triggers"]
    if report is None:
        return Triggers(False, [], [], None, decision_line(record))
    not_fired = [_trigger_name(t) if isinstance(t, dict) else describe(t) for t in report.get("not_fired", [])]
    source = report.get("source")
    return Triggers(True, [_trigger_fields(t) for t in report["fired"]], not_fired,
                    None if source in (None, "", {}) else describe(source), decision_line(record))


def phase_rows(record: Record) -> list[PhaseRow]:
    reference = record["created_at"]
    return [PhaseRow(index, phase_label(phase), format_clock(phase["started_at"], reference),
                     format_clock(phase["ended_at"], reference), format_duration(phase_duration(phase)),
                     format_estimate(phase["estimate"]), yes_no(phase_within_estimate(phase)), phase["status"],
                     hosts_changed(phase), phase_notes(phase, reference))
            for index, phase in enumerate(record["phases"], 1)]


def checklist_lines(record: Record) -> list[tuple[bool, str, str, str]]:
    """(done, item, time, note) for each Appendix A item."""
    reference = record["created_at"]
    return [(item["done"], item["item"], format_clock(item["at"], reference) if item["at"] else "", item["note"] or "")
            for item in record["checklist"]]


def backup_rows(record: Record) -> list[tuple[str, str]] | None:
    backup = record["backup"]
    if backup is None:
        return None
    rows = [("Manifest", backup["manifest"] or DASH), ("SHA-256", backup.get("sha256") or DASH),
            ("Size", format_bytes(backup.get("size"))), ("Created at", backup.get("created_at") or DASH)]
    if backup.get("host"):
        rows.append(("Host", backup["host"]))
    return rows


def snapshot_rows(record: Record) -> list[tuple[str, str]] | None:
    snap = record["pre_restore_snapshot"]
    if snap is None:
        return None
    rows = [("Manifest", snap["manifest"] or DASH), ("SHA-256", snap.get("sha256") or DASH)]
    if snap.get("host"):
        rows.append(("Host", snap["host"]))
    for key, title in (("restored", "Restored"), ("dropped", "Dropped")):
        if key in snap:
            rows.append((title, describe(snap[key]) if snap[key] else "none"))
    return rows


def check_rows(checks: Iterable[Mapping[str, Any]]) -> list[CheckRow]:
    return [CheckRow(c["name"], c["host"], c["verdict"], format_value(c.get("value"), c.get("unit")),
                     format_value(c.get("threshold"), c.get("unit")), c.get("detail")) for c in checks]


def notification_rows(record: Record) -> list[tuple[str, str, str, str, str]]:
    """(channel, event, status, sent at, detail) per notification."""
    rows = []
    for note in record["notifications"]:
        detail = []
        if note.get("http_status") is not None:
            detail.append(f"HTTP {note['http_status']}")
        if note.get("statuspage_incident_id"):
            detail.append(f"status page incident {note['statuspage_incident_id']}")
        if note.get("error"):
            detail.append(f"error: {note['error']}")
        sent = format_clock(note["sent_at"], record["created_at"]) if note.get("sent_at") else DASH
        rows.append((str(note["channel"]), str(note["event"]), str(note["status"]), sent, "; ".join(detail)))
    return rows


def log_entries(record: Record) -> list[LogEntry]:
    """Each collected log, linked relative to the incident folder."""
    entries = []
    for log in record["logs"]:
        count = f" ({log['lines']} lines)" if log.get("lines") is not None else ""
        entries.append(LogEntry(f"{log['host'] or '?'}: {log['source'] or '?'}{count}", safe_relative_link(log["file"]),
                                log["file"]))
    return entries


def bottleneck_line(entry: Mapping[str, Any]) -> str:
    line = (f"{entry['phase']}: {format_duration(entry['duration'])}, {entry['share'] * 100:.0f}% of the phase time "
            f"(estimate {entry['estimate']})")
    if entry["over_by"] is not None:
        line += f"; exceeded its estimate by {format_duration(entry['over_by'])}"
    return line


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix or "(value)": value}


def comparison_rows(rehearsal: Mapping[str, Any]) -> list[tuple[str, str, str, bool]]:
    """Rollback testing: (key, before, after, same) over the flattened before/after states."""
    before, after = rehearsal.get("before"), rehearsal.get("after")
    if before is None and after is None:
        return []
    flat_before, flat_after = _flatten(before or {}), _flatten(after or {})
    flat_before.pop("(value)", None)
    flat_after.pop("(value)", None)
    keys = list(dict.fromkeys([*flat_before, *flat_after]))
    return [(key, format_value(flat_before.get(key)), format_value(flat_after.get(key)),
             flat_before.get(key) == flat_after.get(key) and key in flat_before and key in flat_after)
            for key in keys]


def rehearsal_section(record: Record) -> Rehearsal | None:
    """Rollback testing, for rehearsals (kind ``rehearsal``, or a record with a rehearsal block)."""
    rehearsal = record.get("rehearsal")
    if record["kind"] != "rehearsal" and rehearsal is None:
        return None
    rehearsal = rehearsal or {}
    return Rehearsal(yes_no(rehearsal.get("returned_to_previous_state")), rehearsal.get("deployed_version") or None,
                     format_duration(total_duration(record)), comparison_rows(rehearsal),
                     [describe(d) for d in rehearsal.get("differences", [])],
                     [bottleneck_line(e) for e in bottlenecks(record)])


def follow_up_rows(record: Record) -> list[tuple[str, str, bool]]:
    """Post-Rollback Actions: (title, text, is placeholder)."""
    follow = record["follow_up"]
    tickets = follow["tickets"]
    rows = [
        ("Root cause analysis", follow["root_cause"] or FOLLOW_UP_DEFAULTS["root_cause"], not follow["root_cause"]),
        ("Tickets (issue resolution)", ", ".join(tickets) or FOLLOW_UP_DEFAULTS["tickets"], not tickets),
        ("Deployment retry plan", follow["retry_plan"] or FOLLOW_UP_DEFAULTS["retry_plan"], not follow["retry_plan"]),
    ]
    notified = checklist_item(record, "stakeholders")
    if notified is not None:
        rows.append(("Communication", "stakeholders notified" if notified["done"] else
                     "stakeholders not notified yet: notify them, update the status page, give a timeline for the "
                     "retry", not notified["done"]))
    if follow["notes"]:
        rows.append(("Notes", follow["notes"], False))
    return rows


# ---- the view-model -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class IncidentView:
    """Everything the templates show, as text; `record` is kept for the timeline chart."""

    record: Record
    incident_id: str
    kind: str
    status: str
    summary: str
    banner: list[tuple[str, str]]
    summary_rows: list[tuple[str, str]]
    triggers: Triggers
    phases: list[PhaseRow]
    total_time: str
    estimate_sum: str | None
    checklist: list[tuple[bool, str, str, str]]
    backup: list[tuple[str, str]] | None
    snapshot: list[tuple[str, str]] | None
    verification_counts: dict[str, int]
    verifications: list[tuple[str, list[CheckRow]]]
    notifications: list[tuple[str, str, str, str, str]]
    logs: list[LogEntry]
    rehearsal: Rehearsal | None
    follow_up: list[tuple[str, str, bool]]
    updated_at: str
    problems: list[str] = field(default_factory=list)
    people: PeopleView | None = None


def build(record: Any) -> IncidentView:
    """The view-model of `record`, validated first (its problems are kept in `problems`).

    A record that does not match the schema is still shown when it reads like one (the report then lists
    its problems first); RecordUnreadable when it does not.
    """
    problems = schema_problems(record)
    try:
        return _view(record, problems)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        if not problems:
            raise  # a valid record the model cannot read: a bug here, not in the record
        raise RecordUnreadable(problems) from exc


def _view(record: Record, problems: list[str]) -> IncidentView:
    kind = "rehearsal" if record["kind"] == "rehearsal" else "rollback"
    outcome = record["outcome"]
    summed = estimate_sum(record["phases"])
    return IncidentView(
        record=record, incident_id=record["incident_id"], kind=kind, status=outcome["status"],
        summary=outcome["summary"], banner=banner(record, kind), summary_rows=summary_rows(record),
        triggers=triggers_section(record), phases=phase_rows(record), total_time=total_verdict(record),
        estimate_sum=format_estimate(summed) if summed else None, checklist=checklist_lines(record),
        backup=backup_rows(record), snapshot=snapshot_rows(record),
        verification_counts=verification_counts(record),
        verifications=[(label, check_rows(checks)) for label, checks in verification_groups(record)],
        notifications=notification_rows(record), logs=log_entries(record), rehearsal=rehearsal_section(record),
        follow_up=follow_up_rows(record), updated_at=record["updated_at"], problems=problems,
        people=people_section(record),
    )
