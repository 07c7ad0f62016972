"""The AWX workflow's helper playbooks for real (ansible-runner on localhost, the local receiver as the chat webhook
and the status page): awx/playbooks/not_approved.yml tells the team and leaves the status page alone;
awx/playbooks/collect_logs.yml writes the logs into the incident record named by the preflight job's incident id."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import ansible_runner
import pytest

from rollbackctl.receiver import Receiver

PROJECT = Path(__file__).resolve().parents[2]
TOKEN = f"whtok{uuid.uuid4().hex}"
API_KEY = f"spkey{uuid.uuid4().hex}"
INCIDENT = "20261202T100000Z-rollback-v0.9.0"
PORTS = range(36150, 36160)  # this branch's share of the machine's ports


@pytest.fixture
def receiver():
    for port in PORTS:
        try:
            with Receiver(port=port, api_key=API_KEY) as running:
                yield running
                return
        except OSError:
            continue
    pytest.skip(f"no free port in {PORTS}")


def _run(tmp_path: Path, playbook: str, extravars: dict, hostvars: dict | None = None):
    inventory = {
        "all": {
            "children": {"app": {"hosts": {"localhost": {}}}, "db": {"hosts": {"localhost": {}}}},
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, **(hostvars or {})},
        }
    }
    lines: list[str] = []
    (tmp_path / "runner").mkdir(exist_ok=True)
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith(("ANSIBLE_", "ROLLBACKCTL_"))}
    try:
        runner = ansible_runner.run(
            private_data_dir=str(tmp_path / "runner"),
            project_dir=str(PROJECT),
            playbook=playbook,
            inventory=inventory,
            extravars=extravars,
            quiet=True,
            envvars={"JOB_ID": "9", "ANSIBLE_NOCOLOR": "1"},
            event_handler=lambda event: lines.append(event.get("stdout", "")) or True,
        )
    finally:
        os.environ.update(saved)
    return runner, "\n".join(lines)


def test_not_approved_tells_the_team_and_leaves_the_status_page_alone(tmp_path, receiver):
    extravars = {  # as the workflow passes them: survey answers, preflight's artifacts, the credentials' extra vars
        "rollback_to": "v0.9.0",
        "reason": "messaging 5xx {{ not templated }}",
        "decided_by": "Dana Ops",
        "incident_id": INCIDENT,
        "awx_workflow_job_id": 41,
        "chatbot_notify_webhook_url": f"{receiver.url}/webhook/{TOKEN}",
        "chatbot_statuspage_api": receiver.url,
        "chatbot_statuspage_page_id": "pg7rollback",
        "chatbot_statuspage_api_key": API_KEY,
        "chatbot_notify_state_file": str(tmp_path / "notify-state.json"),
    }
    runner, output = _run(tmp_path, "awx/playbooks/not_approved.yml", extravars)
    assert runner.status == "successful", output[-4000:]
    requests = receiver.requests
    webhooks = [r for r in requests if "/webhook/" in r.get("path", "")]
    assert len(webhooks) == 1, requests
    body = str(webhooks[0].get("body") or webhooks[0])
    assert "Rollback NOT approved" in body and INCIDENT in body and "nothing was changed" in body
    assert "messaging 5xx {{ not templated }}" in body  # free text stays data
    assert "AWX workflow job: 41" in body
    assert not [r for r in requests if "/webhook/" not in r.get("path", "")], "the status page was touched"
    assert TOKEN not in output and API_KEY not in output


def _platform(tmp_path: Path) -> dict:
    root, pm2, nginx = tmp_path / "platform", tmp_path / "pm2", tmp_path / "nginx"
    (root / "shared" / "logs").mkdir(parents=True)
    pm2.mkdir()
    nginx.mkdir()
    (root / "shared" / "logs" / "app-err.log").write_text("Error: connect mongodb://chatbot:Pw-9931x@db/chatbot\n")
    (root / "shared" / "logs" / "app-out.log").write_text("listening\n")
    (pm2 / "pm2.log").write_text("App [chatbot] exited\n")
    (nginx / "error.log").write_text("upstream failed\n")
    (nginx / "access.log").write_text("GET / 502\n")
    return {"chatbot_root": str(root), "chatbot_pm2_home": str(pm2), "chatbot_nginx_log_dir": str(nginx)}


def test_collect_logs_writes_into_the_incident_named_by_the_preflight_job(tmp_path):
    store = tmp_path / "incidents"
    runner, output = _run(
        tmp_path,
        "awx/playbooks/collect_logs.yml",
        {"incident_id": INCIDENT, "rollback_incidents_dir": str(store)},
        _platform(tmp_path),
    )
    assert runner.status == "successful", output[-4000:]
    logs = store / INCIDENT / "logs" / "localhost"
    written = sorted(p.name for p in logs.iterdir())
    assert written and any("err" in name for name in written), written
    assert all("Pw-9931x" not in p.read_text() for p in logs.iterdir())


def test_collect_logs_without_an_incident_id_fails_naming_it(tmp_path):
    runner, output = _run(
        tmp_path,
        "awx/playbooks/collect_logs.yml",
        {"rollback_incidents_dir": str(tmp_path / "incidents")},
        _platform(tmp_path),
    )
    assert runner.status == "failed"
    assert "no incident id (the preflight job publishes it)" in " ".join(output.split())
    assert not (tmp_path / "incidents").exists()
