"""Where the incident record goes under AWX, and the summary a job hands back (rollbackctl.awx)."""

from __future__ import annotations

from pathlib import Path

from rollbackctl import awx

AWX = {"JOB_ID": "7", "AWX_ISOLATED_DATA_DIR": "/runner/artifacts/7"}


def test_outside_awx_the_extra_var_then_the_environment_then_the_project(tmp_path):
    assert awx.incidents_dir(
        {"rollback_incidents_dir": "/a"}, {"ROLLBACKCTL_INCIDENTS_DIR": "/b"}, tmp_path
    ).path == Path("/a")
    assert awx.incidents_dir({}, {"ROLLBACKCTL_INCIDENTS_DIR": "/b"}, tmp_path).path == Path("/b")
    where = awx.incidents_dir({}, {}, tmp_path)
    assert where.path == tmp_path / "incidents" and where.persistent and where.warning is None


def test_under_awx_a_mounted_folder_is_used(tmp_path):
    where = awx.incidents_dir({"rollback_incidents_dir": str(tmp_path / "incidents")}, AWX, "/runner/project")
    assert where.path == tmp_path / "incidents" and where.source == "extra_var" and where.persistent
    where = awx.incidents_dir({}, {**AWX, "ROLLBACKCTL_INCIDENTS_DIR": str(tmp_path)}, "/runner/project")
    assert where.path == tmp_path and where.source == "env"


def test_under_awx_an_unmounted_or_relative_folder_falls_back_to_the_artifacts_with_a_warning(tmp_path):
    where = awx.incidents_dir({"rollback_incidents_dir": str(tmp_path / "no" / "such")}, AWX, "/runner/project")
    assert where.path == Path("/runner/artifacts/7/incidents") and not where.persistent
    assert "is the volume mounted?" in where.warning and "deleted with the job's private data dir" in where.warning
    where = awx.incidents_dir({}, {**AWX, "ROLLBACKCTL_INCIDENTS_DIR": "relative"}, "/runner/project")
    assert "not an absolute path" in where.warning and where.source == "artifacts"
    where = awx.incidents_dir({}, AWX, "/runner/project")
    assert "neither the extra var rollback_incidents_dir nor $ROLLBACKCTL_INCIDENTS_DIR is set" in where.warning


def test_the_summary_and_its_markdown_are_redacted():
    data = {
        "incident_id": "INC-1",
        "outcome": {"status": "failed", "summary": "stopped", "next_step": "fix it"},
        "procedure": "standard",
        "from_version": "v1.0.0",
        "to_version": "v0.9.0",
        "database": {"restore": False},
        "environment": {"from_versions": {"app1": "v1.0.0"}},
        "phases": [
            {
                "name": "db_restore",
                "status": "failed",
                "duration_seconds": 1.5,
                "within_estimate": None,
                "error": "db1: restore: cannot reach mongodb://chatbot:S3cret-pw@db1/chatbot | oops",
            }
        ],
        "checklist": [
            {"item": "Backup verified", "done": True, "at": "2026-12-02T10:00:00Z"},
            {"item": "Incident report created", "done": False, "at": None},
        ],
    }
    summary = awx.summary(data, awx.Where(Path("/srv/incidents"), "env", True), secrets=["oops"])
    assert "S3cret-pw" not in str(summary) and "oops" not in str(summary)
    assert summary["record"] == "/srv/incidents/INC-1" and summary["phases"][0]["duration_seconds"] == 1.5
    text = awx.summary_markdown(summary)
    assert text.startswith("## Rollback incident INC-1: failed")
    assert "S3cret-pw" not in text and "Checklist: 1 of 2 items done" in text and "- [x] Backup verified" in text
    assert "| db_restore | failed | 1.5 |" in text and "(persistent)" in text


def test_plain_ansible_runner_falls_back_to_its_artifacts_dir_which_it_keeps():
    where = awx.incidents_dir({}, {"AWX_ISOLATED_DATA_DIR": "/srv/runner/artifacts/3"}, "/srv/project")
    assert where.path == Path("/srv/runner/artifacts/3/incidents") and where.persistent
    assert "under ansible-runner" in where.warning and "under AWX that is deleted" in where.warning
