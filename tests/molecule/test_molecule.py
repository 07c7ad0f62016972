"""The molecule rehearsal in podman containers: check -> converge -> idempotence -> verify."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from rollbackctl.record import validate

from ..collection.test_loading import NOT_LOADED

pytestmark = pytest.mark.molecule

IMAGE = "localhost/chatbot-rehearsal:bookworm"


def test_molecule_default_scenario(project, tmp_path):
    if not shutil.which("podman") or not shutil.which("molecule"):
        pytest.fail("podman and molecule must be installed: run scripts/install-deps.sh")
    images = subprocess.run(["podman", "image", "exists", IMAGE], check=False)
    assert images.returncode == 0, f"{IMAGE} is missing: run scripts/build-image.sh"
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ROLLBACK_SANDBOX", "ANSIBLE_", "ROLLBACKCTL_"))}
    incidents = tmp_path / "incidents"
    env.update(NO_COLOR="1", ANSIBLE_NOCOLOR="1", ROLLBACKCTL_INCIDENTS_DIR=str(incidents))
    proc = subprocess.run(["molecule", "test", "-s", "default"], cwd=project, env=env, capture_output=True,
                          text=True, check=False, timeout=1800)
    output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    failed = [line for line in output.splitlines() if "fatal:" in line or "FAILED!" in line]
    tail = "\n".join([*failed[:10], "...", *output.splitlines()[-60:]])
    assert proc.returncode == 0, tail
    for action in ("check", "converge", "idempotence", "verify"):
        assert f"{action}: Executed: Successful" in output, tail
    # The collection's content loaded by FQCN, the record callback included (molecule, too, sets
    # ANSIBLE_CALLBACK_PLUGINS): converge rolled back, idempotence found nothing to roll back.
    for sign in NOT_LOADED:
        assert sign not in output, f"{sign!r} in the molecule output"
    records = sorted((json.loads(p.read_text()) for p in incidents.glob("*/incident.json")),
                     key=lambda r: r["incident_id"])
    for record in records:
        validate(record)
    assert [r["outcome"]["status"] for r in records] == ["succeeded", "nothing_to_do"], records
    assert records[0]["writer"] == "callback" and records[0]["to_version"] == "v0.9.0"
    assert {p["name"]: p["status"] for p in records[0]["phases"]}["db_restore"] == "ok"
