"""The incident record survives AWX (issue 12): a real ansible-runner run on an AWX-shaped private data dir.

AWX deletes the private data dir after the job. What survives is the job's events and output, its artifacts (the
aggregate set_stats of the playbook_on_stats event: `artifact_data`) and what the job wrote to a mounted volume.
So the rollback_record callback writes to the folder the job is told to (the extra var rollback_incidents_dir or
$ROLLBACKCTL_INCIDENTS_DIR), rollback.yml ends with a set_stats summary of the record, and the output ends with
the record for people; without a folder it falls back to the artifacts dir and says the record will not survive.
"""

from __future__ import annotations

import json
import os
import subprocess

import ansible_runner

from rollbackctl.record import validate

from .test_loading import PASSWORD, _awx_private_data_dir

AWX_ROLLBACK = "tests/collection/playbooks/awx_rollback.yml"
AWX_FAILING = "tests/collection/playbooks/awx_failing.yml"
TOKEN = "Byp4ss-T0ken-7731"  # as an AWX credential injects it: an extra var


def _run(pdd, playbook, envvars=None):
    """ansible-runner as AWX drives it (JOB_ID and friends; no ANSIBLE_*/ROLLBACKCTL_* from this process)."""
    lines: list[str] = []
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith(("ANSIBLE_", "ROLLBACKCTL_"))}
    try:
        runner = ansible_runner.run(
            private_data_dir=str(pdd),
            playbook=playbook,
            ident="7",
            quiet=True,
            cmdline="-u root",
            envvars={"JOB_ID": "7", "AWX_HOST": "https://awx.invalid", "INVENTORY_ID": "1", **(envvars or {})},
            event_handler=lambda event: lines.append(event.get("stdout", "")) or True,
        )
    finally:
        os.environ.update(saved)
    stats = [e for e in runner.events if e.get("event") == "playbook_on_stats"]
    assert len(stats) == 1, "no playbook_on_stats event"
    return runner, "\n".join(line for line in lines if line), stats[0]["event_data"].get("artifact_data") or {}


def _no_password(*texts):
    for text in texts:
        assert PASSWORD not in text, "the database password leaked"
        assert TOKEN not in text, "the bypass token leaked"


def test_the_record_goes_to_the_mounted_folder_named_by_the_extra_var(project, tmp_path):
    volume = tmp_path / "volume"  # the persistent volume, mounted: it exists; incidents/ below it is created
    volume.mkdir()
    store = volume / "incidents"
    env_store = tmp_path / "not-this-one"
    pdd = _awx_private_data_dir(
        project, tmp_path, {"rollback_to": "v0.9.0", "incident_id": "awx-7", "rollback_incidents_dir": str(store)}
    )
    runner, output, artifacts = _run(pdd, AWX_ROLLBACK, {"ROLLBACKCTL_INCIDENTS_DIR": str(env_store)})
    assert runner.status == "successful", output[-4000:]
    record = json.loads((store / "awx-7" / "incident.json").read_text())
    validate(record)
    assert not env_store.exists(), "the extra var must win over the environment"
    assert "will not survive" not in output and "deleted with the job's private data dir" not in output

    summary = artifacts["rollback_summary"]  # what AWX stores as the job's artifacts
    assert summary["incident_id"] == "awx-7" and summary["outcome"] == record["outcome"]["status"]
    assert summary["outcome"] == "interrupted"  # only preflight ran: the other phases are still pending
    assert summary["to_version"] == "v0.9.0"
    assert summary["record"] == str(store / "awx-7") and summary["record_persistent"] is True
    phases = {p["name"]: p for p in summary["phases"]}
    assert phases["preflight"]["status"] == "ok" and isinstance(phases["preflight"]["duration_seconds"], float)
    assert [c["item"] for c in summary["checklist"]] == [c["item"] for c in record["checklist"]]
    assert artifacts["rollback"]["incident_id"] == "awx-7"  # preflight's own set_stats are kept beside it

    # the job's output ends with the record for people
    tail = output[output.rindex("## Rollback incident awx-7") :]
    assert "| preflight | ok |" in tail and f"Record: {store / 'awx-7'} (persistent)" in tail
    _no_password(output, json.dumps(artifacts))


def test_the_credential_injected_environment_variable_is_used_without_the_extra_var(project, tmp_path):
    store = tmp_path / "credential-store"
    pdd = _awx_private_data_dir(project, tmp_path, {"rollback_to": "v0.9.0", "incident_id": "awx-8"})
    runner, output, artifacts = _run(pdd, AWX_ROLLBACK, {"ROLLBACKCTL_INCIDENTS_DIR": str(store)})
    assert runner.status == "successful", output[-4000:]
    assert (store / "awx-8" / "incident.json").is_file()
    assert artifacts["rollback_summary"]["record"] == str(store / "awx-8")


def test_without_a_mounted_folder_the_record_falls_back_to_the_artifacts_and_says_it_will_not_survive(
    project, tmp_path
):
    unmounted = tmp_path / "not" / "mounted" / "incidents"  # neither it nor its parent exists
    pdd = _awx_private_data_dir(
        project, tmp_path, {"rollback_to": "v0.9.0", "incident_id": "awx-9", "rollback_incidents_dir": str(unmounted)}
    )
    runner, output, artifacts = _run(pdd, AWX_ROLLBACK)
    assert runner.status == "successful", output[-4000:]
    assert not unmounted.exists() and not unmounted.parent.exists()
    fallback = pdd / "artifacts" / "7" / "incidents" / "awx-9"
    assert (fallback / "incident.json").is_file()
    flat = " ".join(output.split())
    assert "is the volume mounted?" in flat and "deleted with the job's private data dir" in flat
    summary = artifacts["rollback_summary"]
    assert summary["record_persistent"] is False and summary["record"] == str(fallback)
    assert "NOT persistent" in output[output.rindex("## Rollback incident awx-9") :]


def test_a_failed_phase_is_summarised_at_the_end_of_the_output_redacted(project, tmp_path):
    store = tmp_path / "incidents"
    pdd = _awx_private_data_dir(
        project,
        tmp_path,
        {
            "rollback_to": "v0.9.0",
            "incident_id": "awx-10",
            "rollback_incidents_dir": str(store),
            "chatbot_maintenance_bypass_token": TOKEN,
        },
    )
    runner, output, artifacts = _run(pdd, AWX_FAILING)
    assert runner.status == "failed", output[-4000:]
    record = json.loads((store / "awx-10" / "incident.json").read_text())
    assert record["outcome"]["status"] == "failed"
    tail = output[output.rindex("## Rollback incident awx-10: failed") :]
    assert "| maintenance_on | failed |" in tail and "Next step:" in tail
    # A failed play ends the playbook before the summary play: the artifacts hold what the phases published
    # (preflight's incident id, for the workflow's failure path), the record and the output hold the rest.
    assert "rollback_summary" not in artifacts and artifacts["rollback"]["incident_id"] == "awx-10"
    # (the task's own failure line above it shows the URI: this playbook fails on purpose without no_log)
    assert "cannot reach mongodb://" in tail and "(bypass token " in tail
    _no_password(tail, json.dumps(artifacts), *(p.read_text() for p in (store / "awx-10").rglob("*") if p.is_file()))


def test_through_transmit_worker_process_only_the_mounted_record_and_the_artifacts_survive(project, tmp_path):
    """AWX's own path without receptor: `ansible-runner transmit | worker --delete | process`. The worker's private
    data dir is deleted; the record on the mounted folder and the artifacts streamed back are what is left."""
    volume = tmp_path / "volume"
    volume.mkdir()
    pdd = _awx_private_data_dir(
        project,
        tmp_path,
        {"rollback_to": "v0.9.0", "incident_id": "awx-11", "rollback_incidents_dir": str(volume / "incidents")},
    )
    (pdd / "env" / "envvars").write_text(json.dumps({"JOB_ID": "11", "AWX_HOST": "https://awx.invalid"}))
    worker_dir, out = tmp_path / "worker", tmp_path / "processed"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "ROLLBACKCTL_"))}
    command = (
        f"ansible-runner transmit {pdd} -p {AWX_ROLLBACK} --ident 11 --cmdline '-u root'"
        f" | ansible-runner worker --private-data-dir {worker_dir} --delete"
        f" | ansible-runner process {out} --ident 11"
    )
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert not worker_dir.exists(), "the worker's private data dir was not deleted"
    events = [json.loads(p.read_text()) for p in sorted((out / "artifacts" / "11" / "job_events").glob("*.json"))]
    stats = [e for e in events if e.get("event") == "playbook_on_stats"]
    assert stats and stats[0]["event_data"]["artifact_data"]["rollback_summary"]["incident_id"] == "awx-11"
    assert (volume / "incidents" / "awx-11" / "incident.json").is_file()
    stdout = "".join(e.get("stdout", "") for e in events)
    assert "## Rollback incident awx-11" in stdout


def test_when_no_rollback_phase_ran_the_summary_says_there_is_no_record(project, tmp_path):
    store = tmp_path / "incidents"
    pdd = _awx_private_data_dir(
        project, tmp_path, {"rollback_to": "v0.9.0", "incident_id": "awx-12", "rollback_incidents_dir": str(store)}
    )
    runner, output, artifacts = _run(pdd, "tests/collection/playbooks/awx_skipped.yml")
    assert runner.status == "successful", output[-4000:]
    assert not list(store.glob("*/incident.json"))
    summary = artifacts["rollback_summary"]
    assert summary["outcome"] == "no_record" and summary["incident_id"] == "awx-12"
    assert "no task of a rollback phase ran; no incident record written" in output
