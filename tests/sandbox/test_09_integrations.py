"""Plan step 8's third-party integration check end to end on the real sandbox: nginx, the app under pm2 on
FerretDB, its reply webhook (REPLY_WEBHOOK_URL, from the inventory's chatbot_reply_webhook_url through
deploy_release.yml) pointing at a local receiver. The verify role's full scope, with only its integration part,
passes while the receiver takes the bot's replies and fails when the receiver is down. The release is deployed
again without the URL afterwards (no URL: no outbound call).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from rollbackctl.receiver import Receiver

PROJECT = Path(__file__).resolve().parents[2]
RECEIVER_PORT = int(os.environ.get("ROLLBACK_TEST_PROMETHEUS_PORT_BASE", "36230")) + 10
WEBHOOK = f"http://127.0.0.1:{RECEIVER_PORT}/webhook/replies"
INTEGRATIONS = [{"name": "reply_webhook", "kind": "reply_webhook"}]


def _deploy(sandbox, **extra) -> None:
    root = sandbox.directory / "app" / "opt" / "chatbot-platform"
    version = json.loads((root / "current" / "release.json").read_text())["version"]
    version = version if version.startswith("v") else f"v{version}"
    command = ["nice", "ansible-playbook", "-i", str(sandbox.inventory), "playbooks/deploy_release.yml",
               "-e", json.dumps({"deploy_version": version, "app_release_migrate": False, **extra})]
    result = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=900, check=False,
                            env={**os.environ, "ANSIBLE_NOCOLOR": "1"})
    assert result.returncode == 0, result.stdout[-3000:]


def _external_checks(sandbox) -> tuple[bool, dict]:
    result = sandbox._run("verify.yml", raise_on_failure=False, extravars={
        "verify_scope": "full", "verify_checks_app": False, "verify_checks_db": False,
        "chatbot_integrations": INTEGRATIONS})
    for path in sorted((Path(result.artifacts_dir) / "job_events").glob("*.json")):
        event = json.loads(path.read_text())
        if event.get("event") == "playbook_on_stats":
            published = event["event_data"].get("artifact_data", {}).get("verification", {}).get("full", {})
            return result.ok, {c["name"]: c for c in published.get("sandbox-app", [])}
    raise AssertionError(f"no playbook_on_stats event in {result.artifacts_dir}")


@pytest.fixture
def webhook_configured(sandbox):
    _deploy(sandbox, chatbot_reply_webhook_url=WEBHOOK)
    env = (sandbox.directory / "app" / "opt" / "chatbot-platform" / "shared" / "app.env").read_text()
    assert f"REPLY_WEBHOOK_URL={WEBHOOK}" in env
    try:
        yield sandbox
    finally:
        _deploy(sandbox)
        env = (sandbox.directory / "app" / "opt" / "chatbot-platform" / "shared" / "app.env").read_text()
        assert "REPLY_WEBHOOK_URL" not in env


def test_the_reply_webhook_is_checked_end_to_end_through_the_platform(webhook_configured):
    sandbox = webhook_configured
    with Receiver(port=RECEIVER_PORT) as receiver:
        ok, checks = _external_checks(sandbox)
        posted = [r for r in receiver.requests if r["path"] == "/webhook/replies"]
    assert ok, checks
    webhook = checks["integration_reply_webhook"]
    assert (webhook["verdict"], webhook["value"]) == ("pass", 200), webhook
    assert len(posted) >= 1 and posted[-1]["body"]["event"] == "bot_reply", posted

    ok, checks = _external_checks(sandbox)  # the receiver is down now
    assert not ok
    webhook = checks["integration_reply_webhook"]
    assert webhook["verdict"] == "fail" and "could not reach the receiver" in webhook["detail"], webhook
