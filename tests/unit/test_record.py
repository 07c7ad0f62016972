"""The incident record and the phase sequencing logic (pure: no playbook runs here)."""

from __future__ import annotations

import json

import pytest

from rollbackctl import phases
from rollbackctl.errors import RecordInvalid
from rollbackctl.orchestrator import skip_reason, steps_for
from rollbackctl.record import IncidentRecord, make_incident_id, validate

SECRET = "Zq7-unit-distinctive-Pw"
AUTHORITY = {"decided_by": "Dana", "role": "lead_devops_engineer", "basis": "primary", "consensus": [],
             "approved_by": ["Dana"], "explanation": "Primary"}


@pytest.fixture
def record(tmp_path) -> IncidentRecord:
    return IncidentRecord.create(tmp_path, "INC-UNIT-1", inventory="/inv/production", environment="production",
                                 reason="messaging 5xx", to_version="v0.9.0", authority=AUTHORITY)


def _saved(record: IncidentRecord) -> dict:
    return json.loads((record.path / "incident.json").read_text())


def test_a_new_record_is_schema_valid_with_every_phase_pending_and_the_report_initiated(record):
    data = _saved(record)
    validate(data)
    assert [p["name"] for p in data["phases"]] == list(phases.NAMES)
    assert {p["status"] for p in data["phases"]} == {"pending"}
    ticked = [c["item"] for c in data["checklist"] if c["done"]]
    assert ticked == ["Incident report initiated"]
    assert [c["item"] for c in data["checklist"]] == list(phases.CHECKLIST)
    assert (record.path / "incident.md").read_text().startswith("# Incident INC-UNIT-1")
    assert record.next_phase() == "preflight"


def test_an_incident_folder_is_never_overwritten(record, tmp_path):
    with pytest.raises(FileExistsError):
        IncidentRecord.create(tmp_path, "INC-UNIT-1", inventory="x", to_version="v0.9.0", authority=AUTHORITY)


def test_incident_ids_are_timestamped_slugs():
    incident = make_incident_id("v0.9.0")
    assert incident.endswith("-rollback-v0.9.0") and incident[8] == "T" and incident[15] == "Z"


def test_phase_times_estimates_and_checklist(record):
    record.start_phase("maintenance_on", ["maintenance.yml"], at="2026-11-28T10:00:00Z")
    record.finish_phase("maintenance_on", "ok", hosts_changed=["app1"], changed=2, at="2026-11-28T10:04:00Z")
    phase = record.phase("maintenance_on")
    assert phase["duration_seconds"] == 240.0 and phase["within_estimate"] is True
    assert phase["hosts_changed"] == ["app1"] and phase["changed"] == 2
    record.start_phase("app_rollback", at="2026-11-28T10:04:00Z")
    record.finish_phase("app_rollback", "ok", at="2026-11-28T10:20:00Z")  # 16 min > 15
    assert record.phase("app_rollback")["within_estimate"] is False
    ticks = {c["item"]: c["at"] for c in record.data["checklist"] if c["done"]}
    assert ticks["Maintenance mode enabled"] == "2026-11-28T10:04:00Z"
    assert ticks["Application code rolled back"] == "2026-11-28T10:20:00Z"
    record.save()
    validate(_saved(record))


def test_a_failed_phase_ticks_nothing_and_is_next(record):
    record.start_phase("preflight")
    record.finish_phase("preflight", "ok")
    record.start_phase("announce")
    record.finish_phase("announce", "failed", error="webhook down")
    assert record.next_phase() == "announce"
    assert not next(c for c in record.data["checklist"] if c["item"].startswith("Rollback decision"))["done"]


def test_an_interrupted_phase_is_retried_and_keeps_both_attempts(record):
    record.start_phase("db_restore", at="2026-11-28T10:00:00Z")
    assert record.interrupt_running("the run died") == ["db_restore"]
    assert record.next_phase() == "preflight"  # earlier phases never ran in this synthetic record
    for name in phases.NAMES[:5]:
        record.start_phase(name)
        record.finish_phase(name, "ok")
    assert record.next_phase() == "db_restore"
    record.start_phase("db_restore")
    record.finish_phase("db_restore", "ok")
    attempts = record.phase("db_restore")["attempts"]
    assert [a["status"] for a in attempts] == ["interrupted", "ok"]
    assert attempts[0]["error"] == "the run died"
    record.save()
    validate(_saved(record))


def test_skipped_phase_is_done_with_its_reason_on_the_checklist(record):
    record.skip_phase("db_restore", "not necessary: the schema suits the target")
    item = next(c for c in record.data["checklist"] if c["item"] == "Database rolled back (if necessary)")
    assert item["done"] and item["note"] == "not necessary: the schema suits the target"
    assert record.phase("db_restore")["status"] == "skipped"
    assert [a["status"] for a in record.phase("db_restore")["attempts"]] == ["skipped"]  # one attempt, not two


def test_set_stats_of_the_phases_land_in_the_record(record):
    record.apply_stats({"preflight": {"from_version": "v1.0.0", "to_version": "v0.9.0", "target_schema": "1",
                                      "database_schema": 2, "database_restore": "True",
                                      "backup_manifest": "/b/pre-deploy-v1.0.0.manifest.json",
                                      "backup_sha256": "ab" * 32, "backup_created_at": "2026-11-28T09:00:00Z"}},
                       phase="preflight")
    record.apply_stats({"database_restore": {"host": "db1", "backup_manifest": "/b/pre-deploy-v1.0.0.manifest.json",
                                             "backup_sha256": "ab" * 32,
                                             "pre_restore_snapshot": "/b/pre-restore/x.manifest.json",
                                             "pre_restore_snapshot_sha256": "cd" * 32,
                                             "restored": ["messages"], "dropped": ["message_reactions"]}},
                       phase="db_restore")
    record.apply_stats({"verification": {"db": {"db1": [
        {"name": "db_ping", "scope": "db", "value": 0.4, "threshold": 1000, "unit": "ms", "verdict": "pass",
         "detail": "ok"}]}}, "notifications": [{"channel": "slack", "event": "rollback_started", "status": "sent"}]},
        phase="verify_db")
    data = record.data
    assert data["from_version"] == "v1.0.0"
    assert data["database"]["restore"] is True and data["database"]["target_schema"] == 1
    assert "schema 1" in data["database"]["reason"]
    assert data["backup"]["sha256"] == "ab" * 32
    assert data["pre_restore_snapshot"]["dropped"] == ["message_reactions"]
    assert data["verifications"][0]["phase"] == "verify_db" and data["verifications"][0]["value"] == 0.4
    assert data["notifications"][0]["channel"] == "slack"
    record.save()
    validate(_saved(record))


def test_secrets_are_redacted_in_the_record_and_the_events(tmp_path):
    uri = f"mongodb://chatbot:{SECRET}@db1:27017/chatbot-platform"
    record = IncidentRecord.create(tmp_path, "INC-UNIT-2", inventory="i", reason=f"cannot connect to {uri}",
                                   to_version="v0.9.0", authority=AUTHORITY, secrets=[SECRET])
    record.add_event({"event": "runner_on_failed", "event_data": {"res": {"msg": f"failed: {uri}"},
                                                                  "password": "hunter22"}})
    record.write_text("logs/app1/app.log", f"connecting {uri}\nplain {SECRET}\n")
    record.save()
    for path in record.path.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert SECRET not in text and "hunter22" not in text, path
    assert "mongodb://chatbot:********@db1" in (record.path / "incident.json").read_text()


def test_an_invalid_record_is_refused_before_it_is_written(record):
    record.data["phases"][0]["status"] = "half-done"
    with pytest.raises(RecordInvalid, match="phases/0/status"):
        record.save()
    assert _saved(record)["phases"][0]["status"] == "pending"


def test_steps_pass_what_preflight_found_to_later_phases(record):
    record.data["from_version"] = "v1.0.0"
    record.data["database"].update({"restore": True, "target_schema": 1, "backup_name": "pre-deploy-v1.0.0"})
    record.data["backup"] = {"manifest": "/b/pre-deploy-v1.0.0.manifest.json"}
    restore = steps_for("db_restore", record)
    assert [s.playbook for s in restore] == ["db_restore.yml"]
    assert restore[0].extravars["backup"] == "pre-deploy-v1.0.0"
    assert restore[0].extravars["rollback_from"] == "v1.0.0"
    record.start_phase("db_restore")
    record.finish_phase("db_restore", "ok")
    verify_db = steps_for("verify_db", record)[0].extravars
    assert verify_db["verify_backup_manifest"] == "/b/pre-deploy-v1.0.0.manifest.json"
    assert verify_db["verify_expected_schema"] == 1
    assert [s.playbook for s in steps_for("maintenance_off", record)] == ["verify.yml", "maintenance.yml"]
    logs = steps_for("collect_logs", record)[0].extravars
    assert logs["incident_logs_dir"] == str(record.path / "logs")


def test_phases_are_skipped_for_a_reason(record):
    record.data["database"].update({"restore": False, "reason": "the schema suits the target"})
    assert "not necessary" in skip_reason("db_restore", record, check=False)
    assert skip_reason("app_rollback", record, check=False) is None
    assert "check mode" in skip_reason("verify_app", record, check=True)
    record.data["environment"]["rollback_needed"] = False
    assert "nothing to roll back" in skip_reason("maintenance_on", record, check=False)
    assert skip_reason("post_verify", record, check=False) is None


def test_communication_counts_only_when_a_notification_was_delivered(record):
    record.start_phase("announce")
    record.finish_phase("announce", "ok")
    item = next(c for c in record.data["checklist"] if c["item"] == "Rollback decision made and communicated")
    assert not item["done"] and "nobody was notified" in item["note"]
    record.apply_stats({"notifications": [{"channel": "webhook", "event": "rollback_completed", "status": "sent"}]})
    record.start_phase("notify_done")
    record.finish_phase("notify_done", "ok")
    item = next(c for c in record.data["checklist"] if c["item"] == "Stakeholders notified")
    assert item["done"] and item["at"]


@pytest.mark.parametrize("path", ["../etc/passwd", "/var/log/nginx/error.log", "logs/app1/../../x.log"])
def test_collected_logs_must_stay_inside_the_record(record, path):
    record.data["logs"].append({"host": "app1", "source": "x", "file": path, "lines": 1})
    with pytest.raises(RecordInvalid, match="logs/0/file"):
        record.save()


def test_a_record_written_with_ids_that_would_escape_the_folder_is_invalid(record):
    record.data["incident_id"] = "a..b"
    with pytest.raises(RecordInvalid, match="incident_id"):
        record.save()


@pytest.mark.parametrize(("needed", "restore", "status"), [
    ("True", "False", "succeeded"), ("False", "False", "nothing_to_do"), ("False", "True", "succeeded")])
def test_preflight_verdict_decides_the_outcome_of_both_writers(record, needed, restore, status):
    record.apply_stats({"preflight": {"from_version": "v1.0.0", "database_restore": restore},
                        "rollback": {"needed": needed, "from_versions": {"app1": "v1.0.0"}}})
    record.conclude()
    assert record.data["outcome"]["status"] == status
    assert record.data["environment"]["from_versions"] == {"app1": "v1.0.0"}


def test_a_report_that_cannot_be_rendered_never_stops_the_record(record, monkeypatch):
    def broken(data):
        raise KeyError("a bug in the report")

    monkeypatch.setattr("rollbackctl.report.render_markdown", broken)
    record.start_phase("preflight", at="2026-11-28T10:00:00Z")
    record.save()
    assert _saved(record)["phases"][0]["status"] == "running"
    markdown = (record.path / "incident.md").read_text()
    assert markdown.startswith("# Incident INC-UNIT-1") and "KeyError" in markdown and "incident.json" in markdown


def test_preflight_names_the_target_when_the_record_did_not_know_it(tmp_path):
    """A callback record created from extra vars without rollback_to (a play variable) learns it from preflight."""
    record = IncidentRecord.create(tmp_path, "INC-TARGET", writer="callback", mode="run", procedure="standard",
                                   inventory="inv", reason="r", to_version=None, authority=AUTHORITY, database="auto")
    record.apply_stats({"preflight": {"from_version": "v1.0.0", "to_version": "not a version"}})
    assert record.data["to_version"] is None
    record.apply_stats({"preflight": {"from_version": "v1.0.0", "to_version": "v0.9.0"}})
    assert record.data["to_version"] == "v0.9.0"
    record.apply_stats({"preflight": {"from_version": "v1.0.0", "to_version": "v0.8.0"}})
    assert record.data["to_version"] == "v0.9.0"
    validate(record.data)


def _zero_downtime_record(tmp_path) -> IncidentRecord:
    from rollbackctl.procedures import zero_downtime_departure

    return IncidentRecord.create(tmp_path, "INC-UNIT-ZD", inventory="/inv/production", reason="messaging 5xx",
                                 to_version="v0.9.0", authority=AUTHORITY, database="auto",
                                 departures=[zero_downtime_departure("Dana")])


def test_a_zero_downtime_rollback_records_its_departure_and_leaves_the_maintenance_window_out(tmp_path, record):
    from rollbackctl.orchestrator import zero_downtime_refusal

    zero = _zero_downtime_record(tmp_path)
    data = _saved(zero)
    validate(data)
    (departure,) = data["departures"]
    assert departure["id"] == "zero_downtime" and departure["chosen_by"] == "Dana" and "step 2" in departure["step"]
    for name in ("maintenance_on", "maintenance_off"):
        reason = skip_reason(name, zero, check=False)
        assert reason and "zero-downtime rollback chosen by Dana" in reason and "step 2" in reason, reason
    for name in ("preflight", "app_rollback", "verify_app", "post_verify"):
        assert skip_reason(name, zero, check=False) is None, name
    # the plan's procedure (no departure) keeps its window and records no departures at all
    assert "departures" not in _saved(record)
    assert skip_reason("maintenance_on", record, check=False) is None
    # preflight's finding decides: same schema goes on, a needed restore refuses before anything changed
    zero.data["database"].update(restore=False, reason="the target's schema is the database's")
    assert zero_downtime_refusal(zero) is None
    zero.data["database"].update(restore=True, reason="target schema 1 < database schema 2")
    refusal = zero_downtime_refusal(zero)
    assert refusal and "schema 1 < database schema 2" in refusal and "without --zero-downtime" in refusal
    record.data["database"].update(restore=True)
    assert zero_downtime_refusal(record) is None


def test_a_record_with_an_unknown_departure_is_invalid(tmp_path):
    zero = _zero_downtime_record(tmp_path)
    data = _saved(zero)
    data["departures"][0]["id"] = "skip_verification"
    with pytest.raises(RecordInvalid):
        validate(data)


def test_the_verifications_attribute_errors_logged_during_the_switch_and_the_restore(record):
    assert steps_for("verify_app", record)[0].extravars["verify_log_attributed_before"] == ""
    record.start_phase("app_rollback", at="2026-11-28T10:00:00Z")
    record.finish_phase("app_rollback", "ok", at="2026-11-28T10:01:00Z")
    app = steps_for("verify_app", record)[0].extravars
    assert (app["verify_log_since"], app["verify_log_attributed_before"]) == ("2026-11-28T10:00:00Z",
                                                                              "2026-11-28T10:01:00Z")
    record.start_phase("db_restore", at="2026-11-28T10:02:00Z")
    record.finish_phase("db_restore", "ok", at="2026-11-28T10:03:30Z")
    for name in ("maintenance_off", "post_verify"):
        full = steps_for(name, record)[0].extravars
        assert full["verify_log_attributed_before"] == "2026-11-28T10:03:30Z", name
