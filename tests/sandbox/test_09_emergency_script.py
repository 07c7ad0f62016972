"""The on-host emergency rollback script on the real sandbox host, with the controller out of the picture.

The code-only bad release v0.9.2 is deployed by the toolkit (which also installs <root>/scripts/emergency-rollback.sh
and its settings); messaging answers 500 while login works. Then the script alone, run from the platform root
with a bare environment (no Ansible, no rollbackctl), rolls the host back to v0.9.0: users can send messages
again through nginx, v0.9.2 is marked bad and kept, and a second run changes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from ..platform_client import PlatformClient

pytestmark = pytest.mark.sandbox

BAD = "v0.9.2"


def _root(sandbox) -> Path:
    return sandbox.directory / "app" / "opt" / "chatbot-platform"


def _run_script(root: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root), "USER": "oncall", "LANG": "C.UTF-8"}
    proc = subprocess.run(["./scripts/emergency-rollback.sh", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no result line (rc={proc.returncode}): {proc.stderr[-3000:]}"
    return proc, json.loads(lines[-1])


@pytest.fixture(scope="module")
def bad_release(sandbox):
    assert sandbox.health()["version"] == "0.9.0", "the sandbox must serve v0.9.0 before this file runs"
    result = sandbox._run("deploy_release.yml", extravars={"deploy_version": BAD}, raise_on_failure=False)
    assert result.ok, result.failures
    yield
    # leave the platform as the other files expect it: v0.9.0 live, no trace of the extra release on disk
    shutil.rmtree(_root(sandbox) / "releases" / BAD, ignore_errors=True)


def test_the_script_alone_rolls_the_host_back_from_the_code_only_bad_release(bad_release, sandbox,
                                                                             synthetic_password):
    root = _root(sandbox)
    script = root / "scripts" / "emergency-rollback.sh"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    settings = (root / "shared" / "emergency-rollback.conf").read_text()
    assert f"PM2_HOME={sandbox.directory / 'app' / 'pm2'}" in settings and "INSTANCES=2" in settings

    # v0.9.2 is live: /health is fine, login and conversations work, messaging answers 500
    health = sandbox.health()
    assert (health["version"], health["status"], health["schema"]["compatible"]) == ("0.9.2", "ok", True)
    user = PlatformClient(sandbox.web_url)
    assert user.login("synthetic-monitor", synthetic_password).status == 200
    conversations = user.conversations()
    assert conversations.status == 200
    conversation = conversations.body["conversations"][0]["id"]
    assert user.send(conversation, "are you there?").status == 500
    assert user.messages(conversation).status == 500

    proc, result = _run_script(root, "--incident-id", "INC-ONHOST-SANDBOX")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (result["from"], result["to"], result["changed"], result["status"]) == (BAD, "v0.9.0", True,
                                                                                   "rolled_back"), result
    assert result["workers"] == 2 and result["error"] is None
    assert os.readlink(root / "current") == "releases/v0.9.0"
    assert sandbox.health()["version"] == "0.9.0"
    assert (root / "releases" / BAD / "release.json").is_file()
    assert json.loads((root / "releases" / BAD / "BAD_RELEASE").read_text())["incident_id"] == "INC-ONHOST-SANDBOX"

    # users again, through nginx, with the session they had: messaging works on v0.9.0
    assert user.send(conversation, "are you back?").status == 201
    assert user.messages(conversation).status == 200

    manifest = (root / "releases" / "manifest.jsonl").read_text()
    proc, again = _run_script(root)
    assert proc.returncode == 0 and again["changed"] is False and again["status"] == "unchanged", again
    assert (root / "releases" / "manifest.jsonl").read_text() == manifest
