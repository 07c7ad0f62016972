"""The notify role for real: ansible-runner on localhost, the local receiver as Slack and Statuspage.

Results come from runner events and stats (and the receiver's record of requests), never from stdout.
Secrets reach the play through a 0600 vars file (`-e @file`), the way the wrapper should pass them:
ansible-runner writes dict extravars into env/extravars, or, with suppress_env_files, onto the command
line that it saves as the `command` artifact.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

from rollbackctl.receiver import Receiver

PROJECT = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "notify.yml"
INVENTORY = f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}"

# Distinctive secrets, so that finding them anywhere is a leak and not a coincidence.
TOKEN = f"whtok{uuid.uuid4().hex}"
API_KEY = f"spkey{uuid.uuid4().hex}"
PAGE = "pg7rollback"
COMPONENTS = ["cmpapi01", "cmpchat02"]
INCIDENT = "20240501T101500Z-api-5xx"
CONTEXT = {
    "environment": "production", "from_version": "v1.0.0", "to_version": "v0.9.0",
    "reason": "API endpoints returning 5xx errors", "decided_by": "Ana Ops",
    "authority": "Lead DevOps Engineer",
    "procedure": "standard", "eta_minutes": 60,
}


@dataclass
class RoleRun:
    status: str
    rc: int
    stats: dict[str, dict[str, int]]
    records: list[dict[str, Any]]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # channel -> module result
    failures: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # facts set by the role
    stdout: str = ""

    @property
    def changed(self) -> int:
        return sum(self.stats.get("changed", {}).values())


@pytest.fixture
def receiver():
    with Receiver(api_key=API_KEY) as running:
        yield running


@pytest.fixture
def workdir(tmp_path) -> Path:
    (tmp_path / "runner").mkdir()
    (tmp_path / "secrets").mkdir(mode=0o700)
    return tmp_path


def _run(workdir: Path, receiver: Receiver, event: str, *, ident: str, check: bool = False,
         api_key: str = API_KEY, context: dict | None = None, verbosity: int = 0, **extra: Any) -> RoleRun:
    """Run the notify role once for `event`; the state file is shared by every run in `workdir`."""
    secrets_file = workdir / "secrets" / f"{ident}.json"
    secrets_file.write_text(json.dumps({"notify_webhook_url": f"{receiver.url}/webhook/{TOKEN}",
                                        "notify_statuspage_api_key": api_key}))
    secrets_file.chmod(0o600)
    extravars = {
        "notify_event": event,
        "notify_incident_id": INCIDENT,
        "notify_context": CONTEXT if context is None else context,
        "notify_statuspage_api": receiver.url,
        "notify_statuspage_page_id": PAGE,
        "notify_statuspage_component_ids": COMPONENTS,
        "notify_state_file": str(workdir / "state" / "notify.json"),
        "notify_timeout": 5,
        **extra,
    }
    cmdline = f"-e @{secrets_file}" + (" --check" if check else "")
    runner = ansible_runner.run(
        private_data_dir=str(workdir / "runner"),
        playbook=str(PLAYBOOK),
        inventory=INVENTORY,
        envvars={"ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"), "ANSIBLE_ROLES_PATH": str(PROJECT / "roles"),
                 "ANSIBLE_NOCOLOR": "1"},
        extravars=extravars,
        cmdline=cmdline,
        ident=ident,
        verbosity=verbosity,
        quiet=True,
    )
    secrets_file.unlink()
    result = RoleRun(status=runner.status, rc=runner.rc, stats=runner.stats or {}, records=[])
    for event_ in runner.events:
        data = event_.get("event_data", {})
        if event_["event"] == "runner_on_ok" and data.get("task_action") == "chatbot.rollback.rollback_notify":
            result.results[data["res"]["record"]["channel"]] = data["res"]
        elif event_["event"] == "runner_on_ok" and data.get("task_action") == "ansible.builtin.set_fact":
            result.facts.update(data["res"].get("ansible_facts") or {})
        elif event_["event"] in ("runner_on_failed", "runner_on_unreachable"):
            result.failures.append(data)
        elif event_["event"] == "playbook_on_stats":
            result.records = (data.get("artifact_data") or {}).get("notifications", [])
    result.stdout = runner.stdout.read()
    return result


def _ok(run: RoleRun) -> None:
    assert (run.status, run.rc, run.failures) == ("successful", 0, []), run.stdout[-3000:]


def _by_channel(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["channel"]: r for r in records}


def test_started_posts_to_the_chat_and_opens_a_status_page_incident(workdir, receiver):
    run = _run(workdir, receiver, "rollback_started", ident="started")
    _ok(run)
    assert run.changed == 2

    webhook, statuspage = receiver.requests
    assert (webhook["method"], webhook["path"], webhook["status"]) == ("POST", f"/webhook/{TOKEN}", 200)
    assert webhook["authorization"] == {"present": False, "scheme": None}
    body = webhook["body"]
    assert body["text"].startswith("Rollback started: production v1.0.0 → v0.9.0\n")
    assert "Ana Ops (Lead DevOps Engineer)" in body["text"]
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "context"]
    assert [f["text"] for f in body["blocks"][2]["fields"]] == [
        "*Environment*\nproduction", "*Versions*\nv1.0.0 → v0.9.0",
        "*Reason*\nAPI endpoints returning 5xx errors", f"*Incident*\n{INCIDENT}"]

    assert (statuspage["method"], statuspage["path"], statuspage["status"]) == (
        "POST", f"/v1/pages/{PAGE}/incidents", 201)
    assert statuspage["authorization"] == {"present": True, "scheme": "OAuth"}
    incident = statuspage["body"]["incident"]
    assert incident["status"] == "identified"
    assert incident["name"] == "Chatbot platform: service disruption"
    assert incident["components"] == dict.fromkeys(COMPONENTS, "major_outage")
    assert "Ana Ops" not in incident["body"]  # the public text holds no internal details

    (sp_id, sp_incident), = receiver.incidents(PAGE).items()
    assert sp_incident["status"] == "identified"
    assert receiver.components(PAGE) == dict.fromkeys(COMPONENTS, "major_outage")

    records = _by_channel(run.records)
    assert records["webhook"] == {"channel": "webhook", "event": "rollback_started", "status": "sent",
                                  "http_status": 200, "sent_at": records["webhook"]["sent_at"]}
    assert records["statuspage"]["status"] == "sent" and records["statuspage"]["http_status"] == 201
    assert records["statuspage"]["statuspage_incident_id"] == sp_id
    assert run.results["statuspage"]["action"] == "create"
    assert run.facts["notify_records"] == run.records


def test_later_events_patch_the_same_incident(workdir, receiver):
    _ok(_run(workdir, receiver, "rollback_started", ident="started"))
    (sp_id,) = receiver.incidents(PAGE)

    run = _run(workdir, receiver, "maintenance_on", ident="maintenance-on",
               context={**CONTEXT, "maintenance": True})
    _ok(run)
    patch = receiver.requests[-1]
    assert (patch["method"], patch["path"], patch["status"]) == (
        "PATCH", f"/v1/pages/{PAGE}/incidents/{sp_id}", 200)
    assert patch["body"]["incident"]["status"] == "identified"
    assert receiver.components(PAGE) == dict.fromkeys(COMPONENTS, "under_maintenance")

    run = _run(workdir, receiver, "rollback_completed", ident="completed",
               context={**CONTEXT, "outcome": "success", "finished_at": "2024-05-01T11:02:00Z"})
    _ok(run)
    assert run.changed == 2
    webhook, patch = receiver.requests[-2:]
    assert webhook["body"]["text"].startswith("Rollback completed: production, now on v0.9.0")
    assert (patch["method"], patch["path"]) == ("PATCH", f"/v1/pages/{PAGE}/incidents/{sp_id}")
    assert "name" not in patch["body"]["incident"]
    assert list(receiver.incidents(PAGE)) == [sp_id]  # one status page incident per rollback incident
    assert receiver.incidents(PAGE)[sp_id]["status"] == "resolved"
    assert receiver.components(PAGE) == dict.fromkeys(COMPONENTS, "operational")
    records = _by_channel(run.records)
    assert records["statuspage"]["statuspage_incident_id"] == sp_id
    assert run.results["statuspage"]["action"] == "update"
    assert (run.results["statuspage"]["incident_status"], run.results["statuspage"]["component_status"]) == (
        "resolved", "operational")
    assert sum(1 for r in receiver.requests if r["method"] == "POST" and "/incidents" in r["path"]) == 1


def test_rerun_sends_nothing_again(workdir, receiver):
    _ok(_run(workdir, receiver, "rollback_started", ident="first"))
    sent = len(receiver.requests)

    run = _run(workdir, receiver, "rollback_started", ident="second")
    _ok(run)
    assert run.changed == 0
    assert len(receiver.requests) == sent
    assert {r["status"] for r in run.records} == {"already_sent"}
    (sp_id,) = receiver.incidents(PAGE)
    assert _by_channel(run.records)["statuspage"]["statuspage_incident_id"] == sp_id


def test_check_mode_sends_and_writes_nothing(workdir, receiver):
    run = _run(workdir, receiver, "rollback_started", ident="check", check=True)
    _ok(run)
    assert receiver.requests == []
    assert {r["status"] for r in run.records} == {"would_send"}
    assert not (workdir / "state").exists()


def test_server_errors_are_reported_not_fatal_and_retried_by_a_rerun(workdir, receiver):
    receiver.fail_next(100, status=500)
    run = _run(workdir, receiver, "rollback_started", ident="failing")
    _ok(run)
    assert run.changed == 0
    assert len(receiver.requests) == 6  # three attempts per channel
    for record in run.records:
        assert (record["status"], record["http_status"]) == ("failed", 500)
        assert "HTTP 500" in record["error"] and "3 attempt(s)" in record["error"]
    assert all(res["warnings"] for res in run.results.values())

    receiver.reset()
    run = _run(workdir, receiver, "rollback_started", ident="recovered")
    _ok(run)
    assert {r["status"] for r in run.records} == {"sent"}
    assert len(receiver.requests) == 2


def test_receiver_down_is_reported_not_fatal(workdir, receiver):
    receiver.down = True
    run = _run(workdir, receiver, "rollback_started", ident="down")
    _ok(run)
    assert receiver.requests == []
    records = _by_channel(run.records)
    assert {r["status"] for r in records.values()} == {"failed"}
    assert records["webhook"]["http_status"] is None and records["webhook"]["error"]
    assert run.results["statuspage"]["attempts"] == 3


def test_wrong_api_key_is_a_401_failure_without_retry(workdir, receiver):
    run = _run(workdir, receiver, "rollback_started", ident="wrong-key", api_key=f"wrong{API_KEY}",
               context={})
    _ok(run)
    records = _by_channel(run.records)
    assert records["webhook"]["status"] == "sent"
    assert (records["statuspage"]["status"], records["statuspage"]["http_status"]) == ("failed", 401)
    assert "HTTP 401" in records["statuspage"]["error"]
    assert [r["status"] for r in receiver.requests if r["path"].startswith("/v1/")] == [401]
    # a minimal context still renders a sensible message
    assert receiver.requests[0]["body"]["text"].startswith("Rollback started\nRollback decision made;")


def test_fail_on_error_fails_the_play_with_a_clean_message(workdir, receiver):
    receiver.fail_next(100, status=503)
    run = _run(workdir, receiver, "rollback_failed", ident="strict", notify_fail_on_error=True)
    assert run.status == "failed" and run.rc != 0
    (failure,) = run.failures
    assert failure["task"] == "Fail on a notification that could not be delivered"
    assert "HTTP 503" in failure["res"]["msg"]
    assert TOKEN not in json.dumps(failure) and API_KEY not in json.dumps(failure)


def test_disabled_does_nothing(workdir, receiver):
    run = _run(workdir, receiver, "rollback_started", ident="disabled", notify_enabled=False)
    _ok(run)
    assert receiver.requests == [] and run.records == [] and run.changed == 0


def test_secrets_appear_in_no_artifact_output_or_state(workdir, receiver):
    runs = [_run(workdir, receiver, "rollback_started", ident="verbose-ok", verbosity=3)]
    receiver.fail_next(100, status=500)
    runs.append(_run(workdir, receiver, "rollback_completed", ident="verbose-fail", verbosity=3))
    receiver.reset()
    receiver.down = True
    runs.append(_run(workdir, receiver, "extended_downtime", ident="verbose-down", verbosity=3))
    for run in runs:
        _ok(run)
        assert TOKEN not in run.stdout and API_KEY not in run.stdout
        assert "/webhook/" not in run.stdout
    assert any(r["status"] == "failed" for run in runs for r in run.records)

    files = [p for p in workdir.rglob("*") if p.is_file()]
    events = [p for p in files if p.parent.name == "job_events"]
    # the module arguments were recorded, with the secrets masked: the scan below looks at them
    assert any("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in p.read_text() for p in events)
    assert (workdir / "state" / "notify.json").is_file()
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        assert TOKEN not in text, f"webhook token leaked into {path}"
        assert API_KEY not in text, f"API key leaked into {path}"
    state = workdir / "state" / "notify.json"
    assert oct(os.stat(state).st_mode & 0o777) == "0o600"
