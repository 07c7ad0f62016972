"""The announcement names the people of the roster, the completion notice carries the retry estimate: the
project's notify.yml for real (ansible-runner through the wrapper's runner, the local receiver as Slack).

The names are passed as the wrapper passes them (free text, extra var roles_text); one of them is a template
that would touch a marker file on the controller if it were ever templated.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from rollbackctl.receiver import Receiver
from rollbackctl.roster import load_roster, roles_line
from rollbackctl.runner import run_playbook

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def receiver():
    for port in range(36000, 36100):
        try:
            with Receiver(port=port) as running:
                yield running
            return
        except OSError:
            continue
    pytest.skip("no free port in 36000-36099")


def _inventory(tmp_path: Path, receiver: Receiver) -> Path:
    inventory = tmp_path / "inventory.yml"
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "chatbot_environment": "unit",
        "chatbot_notify_webhook_url": f"{receiver.url}/webhook/team",
        "chatbot_notify_state_file": str(tmp_path / "notify-state.json"),
    }
    inventory.write_text(yaml.safe_dump({"all": {"children": {"app": {"hosts": {"localhost": host}}}}}))
    return inventory


def _texts(receiver: Receiver) -> str:
    return "\n".join(json.dumps(r.get("body")) for r in receiver.requests)


def test_the_announcement_names_the_roles_and_the_completion_the_retry(tmp_path, receiver):
    marker = tmp_path / "marker"
    roles = load_roster(PROJECT / "inventories" / "local").to_dict()["roles"]
    roles[0]["name"] = f"{{{{ lookup('ansible.builtin.pipe', 'touch {marker}') }}}}"
    common = {
        "incident_id": "INC-PEOPLE-NOTICE",
        "rollback_to": "v0.9.0",
        "rollback_from": "v1.0.0",
        "reason": "5xx",
        "decided_by": "Dana Ops",
        "authority": "lead_devops_engineer (primary)",
    }
    inventory = _inventory(tmp_path, receiver)
    started = run_playbook(
        project=PROJECT,
        playbook="notify.yml",
        inventory=inventory,
        runs_dir=tmp_path / "runs",
        raise_on_failure=False,
        extravars={**common, "notify_event": "rollback_started", "roles_text": roles_line(roles)},
    )
    assert started.ok, started.failures
    assert not marker.exists()
    text = _texts(receiver)
    assert "Roles: Rollback Coordinator: {{ lookup('ansible.builtin.pipe', 'touch" in text
    assert "Database Administrator: Dee Bee (+1 555 0102)" in text
    done = run_playbook(
        project=PROJECT,
        playbook="notify.yml",
        inventory=inventory,
        runs_dir=tmp_path / "runs",
        raise_on_failure=False,
        extravars={
            **common,
            "notify_event": "rollback_completed",
            "retry_eta": "not before 2026-12-02T20:00:00Z (in about 4h)",
        },
    )
    assert done.ok, done.failures
    assert "Retry: not before 2026-12-02T20:00:00Z (in about 4h)" in _texts(receiver)
