"""Verification (playbooks/verify.yml, role verify) against the real sandbox: the good release v0.9.0.

Runs after test_01 (the platform is up and healthy) and leaves it healthy for test_03 (which deploys v1.0.0).
The checks are read from what the playbook publishes with set_stats: the `playbook_on_stats` event of the
runner artifacts (`event_data.artifact_data.verification.<host>`), never from stdout.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.sandbox

CHECK_KEYS = {"name", "scope", "value", "threshold", "unit", "verdict", "detail"}


def _published(result) -> dict[str, list[dict]]:
    """verification.<scope>.<host> as published with set_stats (one scope per run here), by host."""
    for path in sorted((Path(result.artifacts_dir) / "job_events").glob("*.json")):
        event = json.loads(path.read_text())
        if event.get("event") == "playbook_on_stats":
            by_scope = event["event_data"].get("artifact_data", {}).get("verification", {})
            return {host: checks for hosts in by_scope.values() for host, checks in hosts.items()}
    raise AssertionError(f"no playbook_on_stats event in {result.artifacts_dir}")


def _verify(sandbox, check=False, **extravars):
    result = sandbox._run("verify.yml", extravars={"verify_observe_s": 1, **extravars}, check=check,
                          raise_on_failure=False)
    return result, _published(result)


def _by_name(checks: list[dict]) -> dict[str, dict]:
    return {c["name"]: c for c in checks}


def _failed(checks: list[dict]) -> set[str]:
    return {c["name"] for c in checks if c["verdict"] == "fail"}


def _artifact_text(result) -> str:
    return "\n".join(p.read_text(errors="replace") for p in Path(result.artifacts_dir).rglob("*") if p.is_file())


def _secret(sandbox, name: str) -> str:
    return (sandbox.directory / "secrets" / name).read_text().split()[0]


def _pm2(sandbox):
    from ansible_collections.chatbot.rollback.plugins.module_utils.pm2 import Pm2

    return Pm2(binary="pm2", home=str(sandbox.directory / "app" / "pm2"))


def _wait_healthy(sandbox, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        health = sandbox.health()
        if (health.get("http_status") == 200 and health.get("status") == "ok") or time.monotonic() > deadline:
            return health
        time.sleep(0.5)


def test_full_scope_passes_on_the_healthy_platform(sandbox, mongo):
    messages_before = mongo.messages.count_documents({})
    result, published = _verify(sandbox, verify_observe_s=5)  # the role's default observation window
    assert result.ok, result.failures
    assert result.changed_count == 0
    assert set(published) == {"sandbox-app", "sandbox-db"}
    app, db = _by_name(published["sandbox-app"]), _by_name(published["sandbox-db"])
    assert {"pm2_online", "pm2_restarts", "pm2_unstable_restarts", "app_log_errors", "health_answers",
            "app_version", "health_status", "schema_compatible", "nginx", "auth_login", "latency_login",
            "conversations_list", "latency_list_conversations", "messaging_send", "latency_send_message",
            "messaging_read", "latency_list_messages", "messaging_cleanup", "api_5xx_rate",
            "api_5xx_rate_since_start", "integrations", "monitoring"} == set(app)  # none declared: skipped
    assert {"db_connectivity", "db_schema_version", "db_replication_lag", "db_backup_match"} == set(db)
    for check in published["sandbox-app"] + published["sandbox-db"]:
        assert set(check) == CHECK_KEYS, check
        assert check["verdict"] in ("pass", "skip"), check
        if check["verdict"] == "pass":
            assert check["value"] is not None and check["threshold"] is not None, check
    assert app["app_version"]["value"] == "0.9.0"  # from current/release.json: nothing passed
    for name in ("latency_login", "latency_list_conversations", "latency_send_message", "latency_list_messages"):
        assert 0 < app[name]["value"] <= 3000
        assert app[name]["threshold"] == 3000
    assert app["messaging_cleanup"]["value"] == 2
    assert app["api_5xx_rate"]["value"] == 0.0
    assert db["db_replication_lag"]["detail"] == "not a replica set"
    # the synthetic message and the bot's reply were deleted again
    assert mongo.messages.count_documents({}) == messages_before
    assert mongo.messages.count_documents({"text": {"$regex": "^synthetic verification "}}) == 0
    text = _artifact_text(result)
    for name in ("synthetic-password", "db-password", "maintenance-bypass-token"):
        assert _secret(sandbox, name) not in text, f"{name} leaked into the artifacts"


def test_check_mode_runs_the_read_only_checks_and_writes_nothing(sandbox, mongo):
    user = mongo.users.find_one({"username": "synthetic-monitor"})
    before = list(mongo.conversations.find({"user_id": user["_id"]}, {"updated_at": 1}).sort("_id", 1))
    messages_before = mongo.messages.count_documents({})
    result, published = _verify(sandbox, check=True)
    assert result.ok, result.failures
    assert result.changed_count == 0
    app = _by_name(published["sandbox-app"])
    assert app["auth_login"]["verdict"] == "pass"
    assert app["conversations_list"]["verdict"] == "pass"
    for name in ("messaging_send", "messaging_read", "messaging_cleanup"):
        assert app[name]["verdict"] == "skip"
        assert "check mode" in app[name]["detail"]
    # no message sent: no conversation created or touched
    assert before
    assert list(mongo.conversations.find({"user_id": user["_id"]}, {"updated_at": 1}).sort("_id", 1)) == before
    assert mongo.messages.count_documents({}) == messages_before


def test_app_scope_passes_while_maintenance_mode_is_on(sandbox, client, synthetic_password):
    # The plan's step 4 runs with maintenance mode on: the checks go through nginx with the bypass header.
    sandbox._run("maintenance.yml", extravars={"maintenance_state": "on"})
    try:
        assert client.login("synthetic-monitor", synthetic_password).status == 503  # users get the page
        result, published = _verify(sandbox, verify_scope="app", verify_expected_version="v0.9.0")
    finally:
        sandbox._run("maintenance.yml", extravars={"maintenance_state": "off"})
    assert result.ok, result.failures
    assert result.changed_count == 0
    assert set(published) == {"sandbox-app"}
    names = {c["name"] for c in published["sandbox-app"]}
    assert names == {"pm2_online", "pm2_restarts", "pm2_unstable_restarts", "app_log_errors", "health_answers",
                     "app_version", "auth_login", "latency_login"}
    assert not any(c["scope"] == "full" for c in published["sandbox-app"])


def test_db_scope_passes_with_the_schema_version(sandbox):
    result, published = _verify(sandbox, verify_scope="db", verify_expected_schema=1)
    assert result.ok, result.failures
    assert set(published) == {"sandbox-db"}
    db = _by_name(published["sandbox-db"])
    assert (db["db_schema_version"]["verdict"], db["db_schema_version"]["value"]) == ("pass", 1)
    assert db["db_connectivity"]["verdict"] == "pass"
    assert db["db_backup_match"]["verdict"] == "skip"


def test_wrong_expected_version_fails_naming_the_version_check(sandbox):
    result, published = _verify(sandbox, verify_scope="app", verify_expected_version="v1.0.0")
    assert not result.ok
    assert _failed(published["sandbox-app"]) == {"app_version"}
    version = _by_name(published["sandbox-app"])["app_version"]
    assert (version["value"], version["threshold"]) == ("0.9.0", "1.0.0")
    assert any("app_version: 0.9.0" in f["msg"] and "vs 1.0.0" in f["msg"] for f in result.failures), result.failures


def test_unreachable_database_fails_naming_host_and_port_without_the_password(sandbox):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    result, published = _verify(sandbox, verify_scope="db", chatbot_db_port=closed_port, verify_db_timeout_ms=1000)
    assert not result.ok
    db = _by_name(published["sandbox-db"])
    assert db["db_connectivity"]["verdict"] == "fail"
    assert f"127.0.0.1:{closed_port}" in db["db_connectivity"]["detail"]
    assert any(f"127.0.0.1:{closed_port}" in f["msg"] for f in result.failures), result.failures
    assert _secret(sandbox, "db-password") not in _artifact_text(result)


def test_stopped_app_fails_the_app_scope_then_recovers(sandbox):
    pm2 = _pm2(sandbox)
    ecosystem = sandbox.directory / "app" / "opt" / "chatbot-platform" / "shared" / "ecosystem.config.js"
    pm2.run("stop", "app")
    try:
        result, published = _verify(sandbox, verify_scope="app")
    finally:
        pm2.run("start", str(ecosystem), "--only", "app")
        health = _wait_healthy(sandbox)
    assert not result.ok
    failed = _failed(published["sandbox-app"])
    assert {"pm2_online", "health_answers", "auth_login"} <= failed, failed
    online = _by_name(published["sandbox-app"])["pm2_online"]
    assert (online["value"], online["threshold"]) == (0, 2)
    assert any("pm2_online" in f["msg"] and "health_answers" in f["msg"] for f in result.failures)
    # the platform is healthy again for the files that follow
    assert health.get("status") == "ok", health
    again, _ = _verify(sandbox, verify_scope="app")
    assert again.ok, again.failures


def _module_running(name: str) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"AnsiballZ_{name}.py".encode() in (entry / "cmdline").read_bytes():
                    return True
            except OSError:
                continue
    return False


def _app_workers(sandbox) -> list[dict]:
    return [p for p in _pm2(sandbox).processes() if p["name"] == "app"]


def test_restart_check_waits_for_young_workers_and_catches_one_that_dies_meanwhile(sandbox):
    """The restart check looks back on pm2's start times: workers that have been up the window need no wait,
    freshly reloaded ones are waited for, and a worker that dies during that wait fails the check."""
    pm2 = _pm2(sandbox)
    pm2.run("reload", "app")
    assert _wait_healthy(sandbox).get("status") == "ok"
    struck: dict = {}

    def kill_a_worker_while_the_check_waits():
        deadline = time.monotonic() + 120
        while not _module_running("pm2_health") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1)  # the module is in its wait now (the workers are seconds old, the window is 20 s)
        victim = _app_workers(sandbox)[0]["pid"]
        struck["pid"] = victim
        os.kill(victim, signal.SIGKILL)  # pm2 respawns it: a restart within the window

    striker = threading.Thread(target=kill_a_worker_while_the_check_waits, daemon=True)
    striker.start()
    result, published = _verify(sandbox, verify_scope="app", verify_observe_s=20)
    striker.join(timeout=130)
    assert struck, "the worker was never killed"
    restarts = _by_name(published["sandbox-app"])["pm2_restarts"]
    assert restarts["verdict"] == "fail", restarts
    assert str(struck["pid"]) in restarts["detail"], restarts
    assert not result.ok
    assert _wait_healthy(sandbox).get("status") == "ok"
    # reloaded workers are young: the rest of the window is waited for, then the check passes
    pm2.run("reload", "app")
    assert _wait_healthy(sandbox).get("status") == "ok"
    again, published = _verify(sandbox, verify_scope="app", verify_observe_s=15)
    assert again.ok, again.failures
    assert _by_name(published["sandbox-app"])["pm2_restarts"]["detail"] == "0 restarts in 15 s"
    # workers up longer than the window pass at once
    settled, published = _verify(sandbox, verify_scope="app", verify_observe_s=3)
    assert settled.ok, settled.failures
    assert "0 restarts in the last 3 s" in _by_name(published["sandbox-app"])["pm2_restarts"]["detail"]
