"""Deployment Retry Planning: the retry estimate in the record and the completion notice, and the follow-up."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from rollbackctl import matrix, retry
from rollbackctl.cli import main
from rollbackctl.errors import ExitCode, UsageError
from rollbackctl.orchestrator import steps_for
from rollbackctl.record import IncidentRecord, validate
from rollbackctl.report import render_markdown

PROJECT = Path(__file__).resolve().parents[2]
AUTHORITY = {
    "decided_by": "Dana",
    "role": "lead_devops_engineer",
    "basis": "primary",
    "consensus": [],
    "approved_by": ["Dana"],
    "explanation": "Primary",
}


def _record(tmp_path, decision=None, triggers=None) -> IncidentRecord:
    record = IncidentRecord.create(
        tmp_path,
        "INC-RETRY-1",
        inventory="inventories/local",
        reason="5xx",
        to_version="v0.9.0",
        authority=AUTHORITY,
        decision=decision,
        triggers=triggers,
    )
    record.data["created_at"] = "2026-12-02T16:00:00Z"
    record.data["from_version"] = "v1.0.0"
    return record


def _saved(record) -> dict:
    return json.loads((record.path / "incident.json").read_text())


def test_the_operators_estimate_gives_the_retry_timeline(tmp_path):
    record = _record(tmp_path)
    retry.start(record, retry.check_estimate("4h"))
    data = _saved(record)
    validate(data)
    assert data["retry"]["estimate"] == "4h" and data["retry"]["source"] == "operator"
    assert data["retry"]["not_before"] == "2026-12-02T20:00:00Z"
    assert data["retry"]["text"] == ("not before 2026-12-02T20:00:00Z (in about 4h), once the fix is tested in staging")


def test_without_an_estimate_the_fix_estimate_the_matrix_saw_is_used(tmp_path):
    decision = matrix.decide("functional", "high", datetime.timedelta(hours=3)).to_dict()
    record = _record(tmp_path, decision=decision)
    retry.start(record, None)
    section = _saved(record)["retry"]
    assert (section["estimate"], section["source"], section["not_before"]) == (
        "3h",
        "fix_estimate",
        "2026-12-02T19:00:00Z",
    )
    assert section["text"] == "not before 2026-12-02T19:00:00Z (in about 3h), once the fix is tested in staging"
    assert "The estimate is the fix estimate the decision matrix saw." in retry.plan_text(section)


def test_without_any_estimate_the_retry_is_to_be_scheduled(tmp_path):
    record = _record(tmp_path)
    retry.start(record, None)
    section = _saved(record)["retry"]
    assert section["source"] == "none" and section["estimate"] is None and section["not_before"] is None
    assert section["text"] == retry.DEFAULT_TEXT


def test_a_partial_failure_suggests_a_phased_deployment_in_the_follow_up(tmp_path):
    triggers = {
        "fired": [
            {
                "name": "error_rate",
                "description": "error rate above 5%",
                "issue_type": "functional",
                "severity": "high",
                "evidence": {"value": 0.07},
            }
        ]
    }
    record = _record(tmp_path, triggers=triggers)
    record.data["verifications"] = [
        {"scope": "app", "host": "app1", "name": "health", "verdict": "pass"},
        {"scope": "full", "host": "app1", "name": "error_rate", "verdict": "fail"},
    ]
    retry.start(record, retry.check_estimate("2h"))
    retry.conclude(record)
    record.save()
    data = _saved(record)
    validate(data)
    section = data["retry"]
    assert section["partial"] is True and section["phased_deployment"] == retry.PHASED
    assert section["failed_release"] == "v1.0.0"
    assert section["verification"] == {
        "passed": 1,
        "failed": 1,
        "skipped": 0,
        "failed_checks": ["error_rate on app1"],
        "triggers_fired": ["error_rate"],
    }
    plan = data["follow_up"]["retry_plan"]
    assert plan.startswith("Retry of v1.0.0: not before 2026-12-02T18:00:00Z")
    assert "Triggers that fired: error_rate." in plan and "1 passed, 1 failed (error_rate on app1)" in plan
    assert "The failure was partial: deploy the fixed release in phases" in plan
    assert "Retry of v1.0.0: not before" in render_markdown(data)


def test_a_critical_failure_suggests_no_phased_deployment_and_an_operators_plan_is_kept(tmp_path):
    record = _record(tmp_path, decision=matrix.decide("functional", "critical").to_dict())
    retry.start(record, None)
    record.data["follow_up"]["retry_plan"] = "retry on Monday with the canary"
    retry.conclude(record)
    assert record.data["retry"]["partial"] is False and record.data["retry"]["phased_deployment"] is None
    assert record.data["follow_up"]["retry_plan"] == "retry on Monday with the canary"


def test_the_completion_notice_carries_the_retry_estimate(tmp_path):
    record = _record(tmp_path)
    retry.start(record, retry.check_estimate("90m"))
    (step,) = steps_for("notify_done", record)
    assert step.extravars["notify_event"] == "rollback_completed"
    assert step.extravars["retry_eta"].startswith("not before 2026-12-02T17:30:00Z (in about 1h30m")
    template = (PROJECT / "roles" / "notify" / "templates" / "rollback_completed.md.j2").read_text()
    assert "- Retry: {{ c.retry_eta or" in template
    assert 'retry_eta: "{{ rollback_free_text.retry_eta }}"' in (PROJECT / "playbooks" / "notify.yml").read_text()


@pytest.mark.parametrize("value", ["0s", "soon", "-1h", "9999h"])
def test_a_bad_retry_estimate_is_a_usage_error(value, capsys):
    with pytest.raises(UsageError, match="--retry-estimate"):
        retry.check_estimate(value)
    code = main(
        [
            "run",
            "standard",
            "-i",
            "inventories/local",
            "--to",
            "v0.9.0",
            "--reason",
            "r",
            "--decided-by",
            "D",
            "--role",
            "cto",
            f"--retry-estimate={value}",
        ]
    )
    assert code == ExitCode.USAGE
    assert "--retry-estimate" in capsys.readouterr().err
