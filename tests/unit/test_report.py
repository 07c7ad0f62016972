"""The incident report: Markdown and HTML renderings of incident records, and `rollbackctl report`."""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from rollbackctl import phases
from rollbackctl.cli import report as report_command
from rollbackctl.errors import IncidentNotFound, RollbackctlError
from rollbackctl.paths import INCIDENTS_ENV
from rollbackctl.report import (
    attempt_segments,
    axis_ticks,
    bottlenecks,
    format_clock,
    format_duration,
    format_estimate,
    md_cell,
    render_html,
    render_markdown,
    verification_groups,
)

SVG_NS = "{http://www.w3.org/2000/svg}"
T0 = dt.datetime(2024, 5, 1, 16, 0, 0, tzinfo=dt.UTC)

# (name, title, Appendix C estimate in minutes or None)
PHASES = [
    ("preflight", "Preflight checks", None),
    ("announce", "Decision and communication", (15, 15)),
    ("maintenance_on", "Enable maintenance mode", (5, 5)),
    ("app_rollback", "Application code rollback", (10, 15)),
    ("verify_app", "Application verification", (10, 10)),
    ("db_restore", "Database rollback", (15, 30)),
    ("verify_db", "Database verification", (10, 10)),
    ("maintenance_off", "Disable maintenance mode", (5, 5)),
    ("verify_full", "Post-rollback verification", (15, 30)),
]
APPENDIX_A = list(phases.CHECKLIST)
# seconds each phase takes in the successful run: db_restore exceeds its 30 min estimate
DURATIONS = [40, 120, 65, 12 * 60, 4 * 60, 34 * 60, 6 * 60, 30, 18 * 60]


def ts(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    text = resources.files("rollbackctl").joinpath("schemas/incident.schema.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def estimate(minutes: tuple[int, int] | None, title: str) -> dict | None:
    if minutes is None:
        return None
    return {"label": title, "min_minutes": minutes[0], "max_minutes": minutes[1]}


def pending_phase(name: str, title: str, est: tuple[int, int] | None) -> dict:
    return {"name": name, "title": title, "status": "pending", "started_at": None, "ended_at": None,
            "duration_seconds": None, "estimate": estimate(est, title), "within_estimate": None, "hosts_changed": [],
            "changed": 0, "playbooks": [f"{name}.yml"], "attempts": [], "error": None, "note": None}


def done_phase(name: str, title: str, est: tuple[int, int] | None, start: float, seconds: float,
               status: str = "ok", hosts: list[str] | None = None, error: str | None = None) -> dict:
    phase = pending_phase(name, title, est)
    within = None if est is None else seconds <= est[1] * 60
    phase.update(status=status, started_at=ts(start), ended_at=ts(start + seconds), duration_seconds=seconds,
                 within_estimate=within, hosts_changed=hosts or [], changed=len(hosts or []), error=error,
                 attempts=[{"started_at": ts(start), "ended_at": ts(start + seconds), "status": status,
                            "error": error}])
    return phase


def base_record(incident_id: str = "20240501-1600-rollback", kind: str = "rollback") -> dict:
    """A just-created record: every phase pending, nothing checked, nothing known yet."""
    return {
        "schema_version": 1, "incident_id": incident_id, "kind": kind, "writer": "rollbackctl", "mode": "run",
        "procedure": "standard", "created_at": ts(0), "updated_at": ts(1),
        "environment": {"inventory": "inventories/production", "name": "production",
                        "hosts": {"app": ["app1", "app2"], "db": ["db1"], "web": ["web1"]}},
        "reason": "messaging returns 5xx", "from_version": "v1.0.0", "to_version": "v0.9.0",
        "triggers": None, "decision": None,
        "authority": {"decided_by": "Dana", "role": "Lead DevOps Engineer", "basis": "primary"},
        "database": {"requested": "auto", "restore": None, "reason": None},
        "phases": [pending_phase(*p) for p in PHASES],
        "checklist": [{"item": item, "done": False, "at": None, "note": None} for item in APPENDIX_A],
        "backup": None, "pre_restore_snapshot": None, "verifications": [], "notifications": [], "logs": [],
        "outcome": {"status": "in_progress", "summary": "rollback started", "next_step": None, "ended_at": None,
                    "duration_seconds": None},
        "follow_up": {"root_cause": None, "tickets": [], "retry_plan": None, "notes": None},
    }


def tick(record: dict, index: int, at: float, note: str | None = None) -> None:
    record["checklist"][index].update(done=True, at=ts(at), note=note)


def check(phase: str | None, scope: str, name: str, verdict: str, value=None, threshold=None, unit=None,
          detail=None, host: str = "app1") -> dict:
    return {"phase": phase, "scope": scope, "host": host, "name": name, "verdict": verdict, "value": value,
            "threshold": threshold, "unit": unit, "detail": detail}


def successful_rehearsal() -> dict:
    """A complete rehearsal with a database restore; the database rollback exceeded its estimate."""
    record = base_record("rehearsal-20240501", kind="rehearsal")
    record["authority"] = {"decided_by": "rollbackctl rehearse", "role": "rehearsal", "basis": "rehearsal"}
    record["environment"] = {"inventory": "inventories/staging", "name": "staging", "hosts": {"app": ["app1"]}}
    # the shapes of `rollbackctl triggers` and `rollbackctl decide` (TriggerReport / Decision.to_dict())
    record["triggers"] = {
        "source": "observations.json", "collected_at": ts(-600), "result": "fired",
        "fired": [{"name": "api_5xx", "category": "Critical Functionality Failure",
                   "description": "API endpoints returning 5xx errors", "issue_type": "functional",
                   "severity": "critical", "fired": True,
                   "evidence": {"reason": "api_5xx_ratio = 0.31 breaches > 0.05", "condition": "ratio > 0.05",
                                "values": [{"metric": "api_5xx_ratio", "t": ts(-600), "v": 0.31}],
                                "policy_applied": None}}],
        "not_fired": [{"name": "latency", "fired": False, "evidence": {"reason": "p95 1.2 s"}}, {"name": "cpu"}],
        "implied_by": "api_5xx", "implied": None}
    record["decision"] = {"issue_type": "functional", "severity": "critical", "impact": "Core functionality broken",
                          "row": 1, "row_text": "Functional Bug | Critical | Core functionality broken | Immediate "
                          "rollback", "decision": "immediate_rollback", "status": "decided", "threshold": None,
                          "fix_estimate": None, "procedure": "emergency", "database_restore": "auto",
                          "explanation": "Functional Bug / Critical: immediate rollback."}
    record["database"] = {"requested": "auto", "restore": True, "reason": "v1.0.0 migrated the schema to 3",
                          "target_schema": 2, "database_schema": 3, "backup_name": "pre-deploy-v1.0.0"}
    start = 0.0
    phases = []
    for (name, title, est), seconds in zip(PHASES, DURATIONS, strict=True):
        hosts = ["app1"] if name in ("app_rollback", "db_restore") else []
        phases.append(done_phase(name, title, est, start, seconds, hosts=hosts))
        start += seconds
    record["phases"] = phases
    for index in range(len(APPENDIX_A)):
        tick(record, index, 30 + index * 400, note="restored pre-deploy-v1.0.0" if index == 4 else None)
    record["backup"] = {"manifest": "/var/backups/chatbot/pre-deploy-v1.0.0/manifest.json",
                        "sha256": "ab" * 32, "size": 1468006, "created_at": "2024-05-01T15:00:00Z", "host": "db1"}
    record["pre_restore_snapshot"] = {"manifest": "/var/backups/chatbot/pre-restore-20240501/manifest.json",
                                      "sha256": "cd" * 32, "host": "db1", "restored": ["users", "messages"],
                                      "dropped": ["reactions"]}
    record["verifications"] = [
        check("verify_app", "app", "pm2_online", "pass", 2, 2, "workers"),
        check("verify_full", "full", "latency_login", "pass", 412, 3000, "ms"),
        check("verify_full", "full", "latency_send_message", "pass", 2950.5, 3000, "ms", "POST /api/messages"),
        check("verify_full", "full", "api_5xx_rate", "pass", 0.0, 0.01, "ratio"),
        check("verify_db", "db", "replication_lag", "skip", None, 10, "s", "no replica set"),
        check("verify_db", "db", "schema_version", "pass", 2, 2, None, host="db1"),
    ]
    record["notifications"] = [
        {"channel": "webhook", "event": "rollback_started", "status": "sent", "http_status": 200,
         "sent_at": ts(100)},
        {"channel": "statuspage", "event": "rollback_completed", "status": "sent", "http_status": 200,
         "sent_at": ts(4700), "statuspage_incident_id": "sp-1"},
    ]
    record["logs"] = [{"host": "app1", "source": "pm2 app error log", "file": "logs/app1/app-error.log",
                       "lines": 200},
                      {"host": "db1", "source": "mongod", "file": "logs/db1/mongod log.txt", "lines": None}]
    total = float(sum(DURATIONS))
    record["outcome"] = {"status": "succeeded", "summary": "v0.9.0 is live and verified; the database is restored",
                         "next_step": None, "ended_at": ts(total), "duration_seconds": total}
    record["updated_at"] = ts(total)
    record["rehearsal"] = {
        "deployed_version": "v1.0.0",
        "before": {"version": "v0.9.0", "schema": 2, "counts": {"users": 10, "messages": 120}},
        "after": {"version": "v0.9.0", "schema": 2, "counts": {"users": 10, "messages": 121}},
        "returned_to_previous_state": True,
        "differences": ["counts.messages: 120 -> 121 (the synthetic login wrote one message)"],
    }
    return record


def failed_run() -> dict:
    """The application verification failed: maintenance mode is still on, later phases pending."""
    record = base_record("20240501-1600-failed")
    record["triggers"] = {"fired": ["Authentication system not working"], "not_fired": []}
    record["decision"] = {"status": "rollback", "decision": "Immediate rollback", "row": ["Functional Bug",
                                                                                          "Critical"]}
    record["database"] = {"requested": "no", "restore": False, "reason": "operator asked for code only"}
    record["phases"][0] = done_phase("preflight", "Preflight checks", None, 0, 20)
    record["phases"][1] = done_phase("announce", "Decision and communication", (15, 15), 20, 60)
    record["phases"][2] = done_phase("maintenance_on", "Enable maintenance mode", (5, 5), 80, 100, hosts=["web1"])
    record["phases"][3] = done_phase("app_rollback", "Application code rollback", (10, 15), 180, 600,
                                     hosts=["app1", "app2"])
    record["phases"][4] = done_phase("verify_app", "Application verification", (10, 10), 780, 200, status="failed",
                                     error="pm2 app errored | restart loop")
    record["phases"][5]["status"] = "skipped"
    record["phases"][5]["note"] = "database restore not requested"
    tick(record, 0, 20)
    tick(record, 1, 180)
    tick(record, 2, 780)
    record["verifications"] = [
        check("verify_app", "app", "pm2_online", "pass", 2, 2, "workers"),
        check("verify_app", "app", "login", "fail", 503, 200, "http status", "POST /api/login answered 503",
              host="app2"),
        check(None, "app", "log_scan", "fail", 14, 0, "errors", "TypeError in app-error.log"),
    ]
    record["outcome"] = {"status": "failed", "summary": "the application did not come back on v0.9.0",
                         "next_step": "Keep maintenance on; inspect logs/app2/app-error.log and call the DBA",
                         "ended_at": ts(980), "duration_seconds": 980}
    record["updated_at"] = ts(980)
    return record


def resumed_run() -> dict:
    """The database rollback was interrupted once, then resumed and completed."""
    record = successful_rehearsal()
    record["kind"] = "rollback"
    record["incident_id"] = "20240501-1600-resumed"
    record.pop("rehearsal")
    db = record["phases"][5]
    start = db["started_at"]
    first_end = ts(offset_of(start) + 300)
    second_start = ts(offset_of(start) + 900)
    db["attempts"] = [
        {"started_at": start, "ended_at": first_end, "status": "interrupted", "error": "SIGINT from operator"},
        {"started_at": second_start, "ended_at": db["ended_at"], "status": "ok", "error": None},
    ]
    db["note"] = "resumed after the interruption"
    return record


def offset_of(timestamp: str) -> float:
    return (dt.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC) - T0).total_seconds()


ALL_RECORDS = {"rehearsal": successful_rehearsal, "failed": failed_run, "resumed": resumed_run,
               "minimal": base_record}


def table_row(markdown: str, first_cells: str) -> list[str]:
    """The cells of the Markdown table row starting with `first_cells` (e.g. '| 4 | Application code rollback |')."""
    line = next(line for line in markdown.splitlines() if line.startswith(first_cells))
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]


# ---- the fixtures follow the contract ----------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(ALL_RECORDS))
def test_fixture_records_validate_against_the_schema(validator, name):
    errors = sorted(validator.iter_errors(ALL_RECORDS[name]()), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


# ---- helpers ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (42, "42 s"), (42.4, "42 s"), (59.6, "1 min 00 s"), (185, "3 min 05 s"), (3600, "1 h 00 min"),
    (3720, "1 h 02 min"), (None, "\u2014"), (-1, "\u2014"), ("12", "\u2014"), (True, "\u2014"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("est", "text"), [
    ({"label": "x", "min_minutes": 10, "max_minutes": 15}, "10-15 min"),
    ({"label": "x", "min_minutes": 5, "max_minutes": 5}, "5 min"),
    ({"label": "x", "min_minutes": 60, "max_minutes": 120}, "1-2 h"),
    ({"label": "x", "min_minutes": 2.5, "max_minutes": 7.5}, "2.5-7.5 min"),
    (None, "\u2014"), ({}, "\u2014"),
])
def test_format_estimate(est, text):
    assert format_estimate(est) == text


def test_format_clock_adds_the_date_when_the_day_changed():
    assert format_clock("2024-05-01T16:04:05.123Z", "2024-05-01T15:00:00Z") == "16:04:05Z"
    assert format_clock("2024-05-02T00:01:00Z", "2024-05-01T23:59:00Z") == "2024-05-02 00:01:00Z"
    assert format_clock(None) == "\u2014"


def test_md_cell_escapes_pipes_and_newlines():
    assert md_cell("a | b\nc\r\nd") == "a \\| b<br>c<br>d"
    assert md_cell(None) == "\u2014"


@pytest.mark.parametrize(("span", "first", "last"), [
    (30, "0 s", "30 s"), (90, "0:00", "1:30"), (3600, "0 min", "60 min"), (4 * 3600, "0 h", "4 h"),
])
def test_axis_ticks_use_units_suited_to_the_span(span, first, last):
    ticks = axis_ticks(span)
    assert 2 <= len(ticks) <= 9
    assert ticks[0] == (0.0, first)
    assert ticks[-1][1] == last


def test_attempt_segments_one_per_attempt_and_open_ended_until_updated():
    phase = resumed_run()["phases"][5]
    segments = attempt_segments(phase, T0)
    assert [(s.status, s.attempt, s.attempts) for s in segments] == [("interrupted", 1, 2), ("ok", 2, 2)]
    assert segments[0].end - segments[0].start == 300
    running = pending_phase("db_restore", "Database rollback", (15, 30))
    running.update(status="running", started_at=ts(60),
                   attempts=[{"started_at": ts(60), "ended_at": None, "status": "running"}])
    (segment,) = attempt_segments(running, T0, now=T0 + dt.timedelta(seconds=200))
    assert segment.open_ended and (segment.start, segment.end) == (60, 200)
    assert attempt_segments(pending_phase("x", "X", None), T0) == []


def test_bottlenecks_rank_the_largest_phases_and_flag_those_over_estimate():
    entries = bottlenecks(successful_rehearsal())
    assert [e["name"] for e in entries[:3]] == ["db_restore", "verify_full", "app_rollback"]
    db = entries[0]
    assert db["over_by"] == 4 * 60 and db["largest"]
    assert abs(sum(DURATIONS) * db["share"] - 34 * 60) < 1e-6
    assert all(e["over_by"] is None for e in entries[1:])


def test_verification_groups_by_phase_in_phase_order_failed_first():
    groups = verification_groups(failed_run())
    labels = [label for label, _ in groups]
    assert labels == ["Application verification (scope app)", "scope app"]
    assert [c["name"] for c in groups[0][1]] == ["login", "pm2_online"]


# ---- Markdown ----------------------------------------------------------------------------------------

def test_markdown_starts_with_the_outcome():
    text = render_markdown(successful_rehearsal())
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0] == "# Incident rehearsal-20240501: rehearsal succeeded"
    assert lines[1].startswith("**Outcome: SUCCEEDED**: v0.9.0 is live and verified")
    assert text.index("Outcome") < text.index("## Summary") < text.index("## Timeline")
    assert "maintenance mode is off" in text
    assert "Next step" not in text.split("## Summary")[0]


def test_markdown_failed_run_says_maintenance_is_on_and_what_to_do_next():
    text = render_markdown(failed_run())
    head = text.split("## Summary")[0]
    assert "**Outcome: FAILED**: the application did not come back on v0.9.0" in head
    assert "maintenance mode is ON" in head
    assert "**Stopped at:** Application verification (failed): pm2 app errored | restart loop" in head
    assert "**Next step:** Keep maintenance on; inspect logs/app2/app-error.log and call the DBA" in head
    row = table_row(text, "| 5 | Application verification |")
    assert row[7] == "failed"
    assert row[9] == "error: pm2 app errored \\| restart loop"  # one attempt: its failure is the phase's
    for index in (7, 8, 9):
        cells = table_row(text, f"| {index} |")
        assert cells[2:5] == ["\u2014"] * 3 and cells[7] == "pending"
    skipped = table_row(text, "| 6 | Database rollback |")
    assert skipped[6] == "\u2014" and skipped[7] == "skipped" and "database restore not requested" in skipped[9]
    assert "code only, no database restore" in text and "operator asked for code only" in text


def test_markdown_generic_triggers_and_decision_shapes():
    text = render_markdown(failed_run())
    assert table_row(text, "| Authentication system not working |") == ["Authentication system not working",
                                                                         "\u2014"]
    assert "Decision matrix: Immediate rollback (status: rollback); matrix row: Functional Bug, Critical" in text
    record = failed_run()
    record["triggers"] = {"fired": [{"trigger": "latency", "value": 4200, "threshold": 3000, "unit": "ms",
                                     "host": "app1"}], "not_fired": ["cpu"]}
    record["decision"] = None
    text = render_markdown(record)
    assert table_row(text, "| latency |")[1] == "value 4200 ms, threshold 3000 ms; host: app1"
    assert "Not fired: cpu." in text
    assert "Decision matrix: no decision-matrix answer recorded." in text
    record["triggers"]["implied_by"] = "latency"
    record["triggers"]["implied"] = {"decision": None, "status": "conditional", "row": 5,
                                     "row_text": "Performance | High | Significant slowdown | Rollback if fix > 2 "
                                                 "hours"}
    assert ("Decision matrix: implied by the triggers (most urgent trigger: latency): no automatic answer (status: "
            "conditional); matrix row 5: Performance | High") in render_markdown(record)


def test_markdown_default_next_step_when_none_recorded():
    record = failed_run()
    record["outcome"]["next_step"] = None
    head = render_markdown(record).split("## Summary")[0]
    assert "**Next step:** See the phase that failed" in head


def test_markdown_every_phase_row_has_estimate_and_within_estimate():
    record = successful_rehearsal()
    text = render_markdown(record)
    header = table_row(text, "| # | Phase |")
    assert header[5:7] == ["Estimate (Appendix C)", "Within estimate"]
    expected = {"Preflight checks": ("\u2014", "\u2014"), "Decision and communication": ("15 min", "yes"),
                "Enable maintenance mode": ("5 min", "yes"), "Application code rollback": ("10-15 min", "yes"),
                "Application verification": ("10 min", "yes"), "Database rollback": ("15-30 min", "no"),
                "Database verification": ("10 min", "yes"), "Disable maintenance mode": ("5 min", "yes"),
                "Post-rollback verification": ("15-30 min", "yes")}
    for index, (_, title, _) in enumerate(PHASES, 1):
        cells = table_row(text, f"| {index} | {title} |")
        assert (cells[5], cells[6]) == expected[title], title
        assert cells[4] == format_duration(DURATIONS[index - 1])
        assert cells[7] == "ok"
    assert table_row(text, "| 4 |")[8] == "app1 (1 change)"
    assert table_row(text, "| 6 |")[2:5] == ["16:19:45Z", "16:53:45Z", "34 min 00 s"]
    assert "Total time: 1 h 18 min vs the plan's total estimated time of 1-2 h: within the estimate." in text
    assert "16 min 20 s until it stopped vs the plan's" in render_markdown(failed_run())


def test_markdown_total_over_the_plan():
    record = successful_rehearsal()
    record["outcome"]["duration_seconds"] = 2 * 3600 + 600
    assert "2 h 10 min vs the plan's total estimated time of 1-2 h: over the estimate by 10 min 00 s" in \
        render_markdown(record)


def test_markdown_checklist_ticked_with_times_and_notes():
    text = render_markdown(failed_run())
    assert "- [x] Rollback decision made and communicated \u2014 16:00:20Z" in text
    assert "- [x] Maintenance mode enabled \u2014 16:03:00Z" in text
    assert "- [ ] Maintenance mode disabled" in text
    rehearsal = render_markdown(successful_rehearsal())
    assert "- [x] Database rolled back (if necessary) \u2014 16:27:10Z (restored pre-deploy-v1.0.0)" in rehearsal
    record = base_record()
    record["checklist"][8]["note"] = "status page | chat"
    assert "- [ ] Stakeholders notified (status page | chat)" in render_markdown(record)


def test_markdown_verifications_show_value_threshold_and_failures_first():
    text = render_markdown(successful_rehearsal())
    assert "6 checks" not in text and "5 passed, 0 failed, 1 skipped." in text
    row = table_row(text, "| latency_send_message |")
    assert row == ["latency_send_message", "app1", "pass", "2950 ms", "3000 ms", "POST /api/messages"]
    assert table_row(text, "| replication_lag |")[3:5] == ["\u2014", "10 s"]
    section = render_markdown(failed_run()).split("## Verifications")[1].split("## Notifications")[0]
    assert section.index("| login |") < section.index("| pm2_online |")
    assert "| login | app2 | **FAIL** | 503 http status | 200 http status | POST /api/login answered 503 |" in section
    assert "### scope app" in section


def test_markdown_summary_triggers_backup_notifications_logs():
    text = render_markdown(successful_rehearsal())
    assert table_row(text, "| Version |")[1] == "v1.0.0 \u2192 v0.9.0"
    assert table_row(text, "| Basis of authority |")[1].startswith("rehearsal")
    assert "restore the database (requested: auto); why: v1.0.0 migrated the schema to 3" in text
    assert "schema: database 3, target release 2; backup pre-deploy-v1.0.0" in text
    trigger = table_row(text, "| api_5xx: API endpoints returning 5xx errors (Critical Functionality Failure, "
                              "functional/critical) |")
    assert trigger[1] == "api_5xx_ratio = 0.31 breaches > 0.05"
    assert "Not fired: latency, cpu." in text
    assert "Source: observations.json" in text
    assert ("Decision matrix: immediate rollback (status: decided); matrix row 1: Functional Bug | Critical | Core "
            "functionality broken | Immediate rollback; emergency procedure; database restore: auto; why: Functional "
            "Bug / Critical: immediate rollback.") in text
    assert table_row(text, "| SHA-256 |")[1] == "ab" * 32
    assert table_row(text, "| Size |")[1] == "1.4 MiB (1468006 bytes)"
    assert table_row(text, "| Dropped |")[1] == "reactions"
    assert "| statuspage | rollback_completed | sent | 17:18:20Z | HTTP 200; status page incident sp-1 |" in text
    assert "- [app1: pm2 app error log (200 lines)](logs/app1/app-error.log)" in text
    assert "- [db1: mongod](logs/db1/mongod%20log.txt)" in text


def test_markdown_interrupted_attempts_are_noted():
    text = render_markdown(resumed_run())
    notes = table_row(text, "| 6 | Database rollback |")[9]
    assert "2 attempts" in notes
    assert "attempt 1 interrupted 16:19:45Z-16:24:45Z (SIGINT from operator)" in notes
    assert "resumed after the interruption" in notes
    assert "## Rollback testing" not in text


def test_markdown_rehearsal_rollback_testing_and_bottlenecks():
    text = render_markdown(successful_rehearsal())
    section = text.split("## Rollback testing")[1].split("## Follow-up")[0]
    assert "**Returned to the previous state:** yes" in section
    assert "**Deployed (then rolled back):** v1.0.0" in section
    assert "| counts.messages | 120 | 121 | **no** |" in section
    assert "| version | v0.9.0 | v0.9.0 | yes |" in section
    assert "- counts.messages: 120 -> 121" in section
    bottleneck = section.split("### Process refinement: bottlenecks")[1]
    assert "- Database rollback: 34 min 00 s, 43% of the phase time (estimate 15-30 min); exceeded its estimate by " \
           "4 min 00 s" in bottleneck


def test_markdown_follow_up_placeholders():
    text = render_markdown(failed_run())
    follow = text.split("## Follow-up (Post-Rollback Actions)")[1]
    assert "- **Root cause analysis:** _to be written" in follow
    assert "- **Tickets (issue resolution):** _none yet" in follow
    assert "- **Deployment retry plan:** _to be written" in follow
    assert "- **Communication:** _stakeholders not notified yet" in follow
    record = failed_run()
    record["follow_up"] = {"root_cause": "a missing index", "tickets": ["CHAT-12", "CHAT-13"],
                           "retry_plan": "next Tuesday", "notes": "see the postmortem"}
    follow = render_markdown(record).split("## Follow-up (Post-Rollback Actions)")[1]
    assert "- **Root cause analysis:** a missing index" in follow
    assert "- **Tickets (issue resolution):** CHAT-12, CHAT-13" in follow
    assert "- **Notes:** see the postmortem" in follow


def test_markdown_hostile_text_keeps_the_tables_intact():
    record = failed_run()
    record["reason"] = "line one | still the reason\n| Injected | row |"
    text = render_markdown(record)
    assert table_row(text, "| Reason |") == ["Reason", "line one \\| still the reason<br>\\| Injected \\| row \\|"]
    assert not any(line.startswith("| Injected") for line in text.splitlines())
    record["reason"] = "<script>alert(1)</script> while latency <= 3 s"
    record["outcome"]["summary"] = "<img src=x onerror=alert(1)>"
    text = render_markdown(record)
    assert "<script" not in text and "<img" not in text
    assert table_row(text, "| Reason |")[1] == "&lt;script>alert(1)&lt;/script> while latency <= 3 s"
    assert "**Outcome: FAILED**: &lt;img src=x onerror=alert(1)>" in text


def test_minimal_record_renders():
    text = render_markdown(base_record())
    assert "**Outcome: IN_PROGRESS**: rollback started" in text
    assert "**Next step:** The rollback is still running" in text
    assert "No trigger report was recorded." in text
    assert "No backup was used." in text and "No verification recorded yet." in text
    assert table_row(text, "| 1 | Preflight checks |")[7] == "pending"
    assert "\u2014 (plan: 1-2 h)" in text


def test_renderers_tolerate_missing_fields_and_are_pure():
    for broken in ({}, {"phases": None, "checklist": [None], "outcome": None, "verifications": [{"verdict": "x"}]},
                   {"phases": [{"name": "x", "attempts": [{"started_at": "garbage"}]}]}):
        assert "# Incident" in render_markdown(broken)
        assert render_html(broken).startswith("<!DOCTYPE html>")
    record = resumed_run()
    snapshot = copy.deepcopy(record)
    assert render_markdown(record) == render_markdown(record)
    assert render_html(record) == render_html(record)
    assert record == snapshot


# ---- HTML --------------------------------------------------------------------------------------------

VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "track", "wbr"}


class TagChecker(HTMLParser):
    """Balanced tags outside the SVG (which is checked as XML)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse_html(page: str) -> TagChecker:
    checker = TagChecker()
    checker.feed(page)
    checker.close()
    assert not checker.problems, checker.problems
    assert checker.stack == [], checker.stack
    return checker


def svg_of(page: str) -> ET.Element:
    match = re.search(r"<svg\b.*?</svg>", page, re.DOTALL)
    assert match, "no inline SVG"
    return ET.fromstring(match.group(0))  # noqa: S314 - our own renderer's output


def rects(svg: ET.Element, css_class: str) -> list[ET.Element]:
    return [r for r in svg.iter(f"{SVG_NS}rect") if css_class in (r.get("class") or "").split()]


@pytest.mark.parametrize("name", sorted(ALL_RECORDS))
def test_html_is_well_formed_and_self_contained(name):
    page = render_html(ALL_RECORDS[name]())
    assert page.startswith("<!DOCTYPE html>")
    checker = parse_html(page)
    assert "script" not in checker.tags
    assert not {"link", "img", "iframe", "object"} & set(checker.tags)
    assert "<style>" in page
    external = re.findall(r"(?:src|href)=\"(?:https?:)?//", page) + re.findall(r"url\(", page)
    assert external == []
    assert re.findall(r"https?://[^\"\s<]+", page) == ["http://www.w3.org/2000/svg"] * page.count("<svg")


def test_html_outcome_comes_first():
    page = render_html(failed_run())
    body = page.split("<body>")[1]
    assert body.index("Outcome: FAILED") < body.index("<h2>Summary</h2>")
    assert "maintenance mode is ON" in body.split("<h2>Summary</h2>")[0]
    assert "Keep maintenance on" in body.split("<h2>Summary</h2>")[0]


def test_html_gantt_has_one_bar_per_attempt_and_estimate_bands():
    record = resumed_run()
    svg = svg_of(render_html(record))
    bars = rects(svg, "bar")
    assert len(bars) == len(PHASES) + 1  # the database rollback ran twice
    db_bars = [b for b in bars if "Database rollback:" in (b.findtext(f"{SVG_NS}title") or "")]
    assert [b.get("class") for b in db_bars] == ["bar status-interrupted", "bar status-ok"]
    assert "attempt 1/2 interrupted, 5 min 00 s" in db_bars[0].findtext(f"{SVG_NS}title")
    assert float(db_bars[0].get("x")) + float(db_bars[0].get("width")) < float(db_bars[1].get("x"))
    bands = rects(svg, "estimate")
    assert len(bands) == sum(1 for _, _, est in PHASES if est)
    tips = [b.findtext(f"{SVG_NS}title") for b in bands]
    assert any("Database rollback: Appendix C estimate 15-30 min, actual 34 min 00 s" in t for t in tips)
    labels = [t.text for t in svg.iter(f"{SVG_NS}text") if t.get("class") == "phase-label"]
    assert len(labels) == len(PHASES)
    ticks = [t.text for t in svg.iter(f"{SVG_NS}text") if t.get("class") == "tick-label"]
    assert ticks[0] == "0 min" and all(t.endswith("min") for t in ticks)
    colours = {b.get("class"): b.get("fill") for b in bars}
    assert colours["bar status-ok"] != colours["bar status-interrupted"]


def test_html_gantt_estimate_band_spans_min_to_max_from_the_phase_start():
    record = successful_rehearsal()
    svg = svg_of(render_html(record))
    app_bar = next(b for b in rects(svg, "bar") if "Application code rollback:" in b.findtext(f"{SVG_NS}title"))
    app_band = next(b for b in rects(svg, "estimate")
                    if "Application code rollback:" in b.findtext(f"{SVG_NS}title"))
    # 12 min bar; band from 10 to 15 min after the same start
    bar_x, bar_w = float(app_bar.get("x")), float(app_bar.get("width"))
    band_x, band_w = float(app_band.get("x")), float(app_band.get("width"))
    per_minute = bar_w / 12
    assert band_x == pytest.approx(bar_x + 10 * per_minute, abs=0.2)
    assert band_w == pytest.approx(5 * per_minute, abs=0.2)


def test_html_gantt_failed_run_colours_and_pending_rows():
    svg = svg_of(render_html(failed_run()))
    bars = rects(svg, "bar")
    assert len(bars) == 5
    assert sum(1 for b in bars if b.get("class") == "bar status-failed") == 1
    info = [t.text for t in svg.iter(f"{SVG_NS}text") if (t.get("class") or "").startswith("phase-info")]
    assert info[-1] == "pending (est. 15-30 min)" and info[5] == "skipped (est. 15-30 min)"


def test_html_gantt_fast_rehearsal_clips_long_estimates():
    record = successful_rehearsal()
    start = 0.0
    for phase, seconds in zip(record["phases"], [2, 1, 3, 10, 5, 8, 4, 2, 6], strict=True):
        phase.update(started_at=ts(start), ended_at=ts(start + seconds), duration_seconds=seconds,
                     within_estimate=None if phase["estimate"] is None else True)
        phase["attempts"] = [{"started_at": ts(start), "ended_at": ts(start + seconds), "status": "ok"}]
        start += seconds
    svg = svg_of(render_html(record))
    assert len([p for p in svg.iter(f"{SVG_NS}path") if p.get("class") == "estimate-clipped"]) >= 1
    width = float(svg.get("width"))
    for element in rects(svg, "bar") + rects(svg, "estimate"):
        assert float(element.get("x")) + float(element.get("width")) <= width


def test_html_without_started_phases_has_no_chart():
    page = render_html(base_record())
    parse_html(page)
    assert "<svg" not in page
    assert "No phase has started yet" in page
    empty = base_record()
    empty["phases"] = []
    assert "No phase recorded yet" in render_html(empty)


def test_html_escapes_hostile_text():
    record = failed_run()
    record["reason"] = '<script>alert("x")</script> & "quotes"'
    record["authority"]["decided_by"] = "<img src=x onerror=alert(1)>"
    record["phases"][4]["title"] = "Verify <b>app</b>"
    record["verifications"][1]["detail"] = "</td></tr></table><script>bad()</script>"
    record["logs"] = [{"host": "app1", "source": "<i>x</i>", "file": "javascript:alert(1)"},
                      {"host": "app1", "source": "up", "file": "../../etc/passwd"},
                      {"host": "app1", "source": "ok", "file": 'logs/a"b.log'}]
    page = render_html(record)
    checker = parse_html(page)
    assert "<script" not in page and "<img" not in page and "<b>app" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;" in page
    assert "script" not in checker.tags and "img" not in checker.tags
    assert 'href="javascript' not in page and 'href="../' not in page
    assert 'href="logs/a%22b.log"' in page
    assert "Verify &lt;b&gt;app&lt;/b&gt;" in page
    svg_of(page)  # the hostile title is still well-formed XML in the chart
    text = "".join(checker.text)
    assert '<script>alert("x")</script>' in text  # shown to the reader as text


# ---- rollbackctl report ------------------------------------------------------------------------------

@pytest.fixture
def incidents(tmp_path: Path) -> Path:
    root = tmp_path / "incidents"
    for factory in (successful_rehearsal, failed_run):
        record = factory()
        folder = root / record["incident_id"]
        folder.mkdir(parents=True)
        (folder / "incident.json").write_text(json.dumps(record), encoding="utf-8")
    return root


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="rollbackctl")
    report_command.add_parser(main.add_subparsers(dest="command", required=True))
    return main


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


def test_cmd_report_markdown_to_stdout(incidents, capsys):
    assert run(["report", "20240501-1600-failed", "--incidents-dir", str(incidents)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Incident 20240501-1600-failed: rollback failed")
    assert out == render_markdown(failed_run())


def test_cmd_report_from_the_environment(incidents, capsys, monkeypatch):
    monkeypatch.setenv(INCIDENTS_ENV, str(incidents))
    assert run(["report", "rehearsal-20240501"]) == 0
    assert "## Rollback testing" in capsys.readouterr().out


def test_cmd_report_html_to_output_atomically(incidents, tmp_path, capsys):
    target = tmp_path / "out" / "report.html"
    target.parent.mkdir()
    target.write_text("old", encoding="utf-8")
    assert run(["report", "rehearsal-20240501", "--format", "html", "--output", str(target),
                "--incidents-dir", str(incidents)]) == 0
    assert capsys.readouterr().out == ""
    page = target.read_text(encoding="utf-8")
    assert page == render_html(successful_rehearsal())
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_cmd_report_infers_html_from_the_output_suffix(incidents, tmp_path):
    target = tmp_path / "r.html"
    assert run(["report", "rehearsal-20240501", "-o", str(target), "--incidents-dir", str(incidents)]) == 0
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_cmd_report_refuses_a_missing_output_folder(incidents, tmp_path):
    with pytest.raises(RollbackctlError, match="does not exist"):
        run(["report", "rehearsal-20240501", "-o", str(tmp_path / "nope" / "r.md"), "--incidents-dir",
             str(incidents)])


def test_cmd_report_unknown_incident(incidents):
    with pytest.raises(IncidentNotFound, match="latest known: 20240501-1600-failed, rehearsal-20240501"):
        run(["report", "20990101-nothing", "--incidents-dir", str(incidents)])


@pytest.mark.parametrize("bad", ["../x", "..", "a/b", "/etc/passwd", ""])
def test_cmd_report_refuses_a_malformed_id(incidents, bad):
    with pytest.raises(IncidentNotFound, match="malformed"):
        run(["report", bad, "--incidents-dir", str(incidents)])


def test_cmd_report_unreadable_record(incidents):
    (incidents / "broken").mkdir()
    (incidents / "broken" / "incident.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(RollbackctlError, match="cannot read the incident record"):
        run(["report", "broken", "--incidents-dir", str(incidents)])


def test_report_help_says_where_records_live(capsys):
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(["report", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--incidents-dir DIR" in out and INCIDENTS_ENV in out and "incidents/ in" in out
    assert "--format {md,html}" in out and "--output FILE" in out and "INCIDENT_ID" in out
