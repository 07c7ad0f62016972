"""playbooks/ack.yml: an acknowledgement recorded through a playbook (the AWX job's path), like `rollbackctl ack`.

Real ansible-playbook on localhost against a record in a temporary incidents folder; the name holds template
text, which must reach the record as written (inert data), never evaluated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from rollbackctl import people
from rollbackctl.record import IncidentRecord
from rollbackctl.roster import load_roster

PROJECT = Path(__file__).resolve().parents[2]
LOCAL = PROJECT / "inventories" / "local"
AUTHORITY = {"decided_by": "Dana Ops", "role": "lead_devops_engineer", "basis": "primary", "consensus": [],
             "approved_by": ["Dana Ops"], "explanation": "Primary"}


def _ack(tmp_path: Path, **extravars) -> subprocess.CompletedProcess:
    vars_file = tmp_path / f"vars-{len(list(tmp_path.glob('vars-*')))}.yml"
    vars_file.write_text(yaml.safe_dump(extravars))
    env = {**os.environ, "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "PYTHONPATH": os.pathsep.join([str(PROJECT / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}",
         "-e", f"@{vars_file}", str(PROJECT / "playbooks" / "ack.yml")],
        capture_output=True, text=True, env=env, timeout=300, check=False)


def test_an_acknowledgement_through_the_playbook(tmp_path):
    incidents = tmp_path / "incidents"
    incidents.mkdir()
    record = IncidentRecord.create(incidents, "INC-ACK-1", inventory=str(LOCAL), environment="local",
                                   reason="messaging 5xx", to_version="v0.9.0", authority=AUTHORITY)
    people.start(record, load_roster(LOCAL))
    record.save()
    name = "Quinn QA"
    done = _ack(tmp_path, incident_id="INC-ACK-1", acknowledged_by=name, rollback_incidents_dir=str(incidents))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "changed=1" in done.stdout
    data = json.loads((incidents / "INC-ACK-1" / "incident.json").read_text())
    acks = data["people"]["acknowledgements"]
    assert [ack["name"] for ack in acks] == [name]
    again = _ack(tmp_path, incident_id="INC-ACK-1", acknowledged_by=name, rollback_incidents_dir=str(incidents))
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout

    # Template text in a name is data: it is handed to rollbackctl as written, which refuses it as a name or
    # records it verbatim - it never runs.
    marker = tmp_path / "pwned"
    evil = f"Eve {{{{ lookup('ansible.builtin.pipe', 'touch {marker}') }}}}"
    _ack(tmp_path, incident_id="INC-ACK-1", acknowledged_by=evil, rollback_incidents_dir=str(incidents))
    assert not marker.exists()
    names = [ack["name"] for ack in json.loads((incidents / "INC-ACK-1" / "incident.json").read_text())
             ["people"]["acknowledgements"]]
    assert names in ([name], [name, evil])


def test_a_missing_incident_or_name_is_refused(tmp_path):
    incidents = tmp_path / "incidents"
    incidents.mkdir()
    missing = _ack(tmp_path, incident_id="INC-NONE", acknowledged_by="Quinn QA", rollback_incidents_dir=str(incidents))
    assert missing.returncode != 0
    assert "no incident record 'INC-NONE'" in missing.stdout + missing.stderr
    unnamed = _ack(tmp_path, incident_id="INC-NONE")
    assert unnamed.returncode != 0
    assert "acknowledged_by" in unnamed.stdout + unnamed.stderr
    bad_id = _ack(tmp_path, incident_id="../etc", acknowledged_by="Quinn QA")
    assert bad_id.returncode != 0 and "incident_id" in bad_id.stdout + bad_id.stderr
