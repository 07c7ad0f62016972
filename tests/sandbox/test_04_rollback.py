"""The standard rollback on the real sandbox, after test_03 deployed the bad release v1.0.0.

First a bad day (bad inputs, missing or tampered backup, unreachable database): each fails in
preflight, names the problem and changes nothing. Then the rollback itself, its idempotence and
check mode, and the secrets.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_archive import document_id, open_archive
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_snapshot import database_facts

from rollbackctl.paths import INCIDENTS_ENV

from ..conftest import DISTINCTIVE_DB_PASSWORD, files_holding
from ..platform_client import PlatformClient

pytestmark = pytest.mark.sandbox

ROLLBACK_VARS = {"rollback_to": "v0.9.0", "reason": "messaging returns 5xx",
                 "decided_by": "Dana (Lead DevOps Engineer)", "incident_id": "INC-PYTEST-1"}
STABLE = ("users", "messages", "meta")


def _root(sandbox) -> Path:
    return sandbox.directory / "app" / "opt" / "chatbot-platform"


def _state(sandbox, mongo) -> dict:
    """What a failed preflight must not change: the release, the data, maintenance mode."""
    return {
        "current": os.readlink(_root(sandbox) / "current"),
        "data": {name: facts["content_sha256"] for name, facts in database_facts(mongo).items()},
        "maintenance": sorted(p.name for p in (sandbox.directory / "nginx" / "conf.d").glob("chatbot-maintenance*")),
    }


def _failure_text(result) -> str:
    return " | ".join(f["msg"] for f in result.failures)


@pytest.fixture(scope="module")
def deployed_bad_release(sandbox, synthetic_password, mongo):
    """v1.0.0 is live (test_03), and users wrote messages after the deployment."""
    client = PlatformClient(sandbox.web_url)
    health = sandbox.health()
    assert health["version"] == "1.0.0", "test_03 must have deployed v1.0.0"
    assert client.login("synthetic-monitor", synthetic_password).status == 200
    conversation = client.conversations().body["conversations"][0]["id"]
    for n in range(3):
        client.send(conversation, f"written after the deployment #{n}")
    written = [m["_id"] for m in mongo.messages.find({"body.text": {"$regex": "^written after the deployment"}})]
    assert len(written) == 3, "the bad release stores messages before failing"
    return written


@pytest.mark.parametrize(
    ("extravars", "expected"),
    [
        ({"rollback_to": "v9.9.9"}, "release v9.9.9 is unknown"),
        ({"rollback_to": "v1; rm -rf /"}, 'rollback_to is malformed: "v1; rm -rf /"'),
        ({"rollback_to": "../../etc"}, 'rollback_to is malformed: "../../etc"'),
        ({"rollback_to": ""}, "rollback_to must not be empty"),
        ({"rollback_to": "v0.9.0\n"}, "rollback_to holds the control character U+000A"),
        ({"rollback_to": "v0.9.0", "backup": "no-such-backup"}, "no-such-backup"),
        ({"rollback_to": "v0.9.0", "database": "sometimes"}, 'database must be one of auto, yes, no, not "sometimes"'),
        ({"rollback_to": "v0.9.0",
          "chatbot_mongodb_uri": f"mongodb://chatbot:{DISTINCTIVE_DB_PASSWORD}@127.0.0.1:9/chatbot-platform"},
         "127.0.0.1:9"),
    ],
    ids=["unknown", "injection", "traversal", "empty", "trailing-newline", "missing-backup", "bad-database-choice",
         "db-unreachable"],
)
def test_bad_input_fails_in_preflight_and_changes_nothing(deployed_bad_release, sandbox, mongo, extravars, expected):
    """Refused by the inputs contract (playbooks/inputs.yml) by name, or by preflight's checks of the platform."""
    before = _state(sandbox, mongo)
    result = sandbox._run("rollback.yml", extravars=extravars, raise_on_failure=False)
    assert not result.ok
    assert expected in _failure_text(result), _failure_text(result)
    assert DISTINCTIVE_DB_PASSWORD not in _failure_text(result)
    assert _state(sandbox, mongo) == before


def test_tampered_backup_is_refused_and_changes_nothing(deployed_bad_release, sandbox, mongo):
    backups = sandbox.directory / "backups"
    for suffix in (".archive.gz", ".manifest.json"):
        shutil.copy2(backups / f"pre-deploy-v1.0.0{suffix}", backups / f"tampered{suffix}")
    manifest = json.loads((backups / "tampered.manifest.json").read_text())
    manifest["archive"] = "tampered.archive.gz"
    (backups / "tampered.manifest.json").write_text(json.dumps(manifest))
    archive = backups / "tampered.archive.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte changed
    archive.write_bytes(bytes(data))
    before = _state(sandbox, mongo)
    result = sandbox._run("rollback.yml", extravars={"rollback_to": "v0.9.0", "backup": "tampered"},
                          raise_on_failure=False)
    assert not result.ok
    assert "sha256" in _failure_text(result), _failure_text(result)
    assert _state(sandbox, mongo) == before
    for suffix in (".archive.gz", ".manifest.json"):
        (backups / f"tampered{suffix}").unlink()


@pytest.fixture(scope="module")
def rolled_back(deployed_bad_release, sandbox):
    stats: dict = {}

    def keep_stats(event):
        if event.get("event") == "playbook_on_stats":
            stats.update(event["event_data"].get("artifact_data") or {})

    result = sandbox._run("rollback.yml", extravars=ROLLBACK_VARS, on_event=keep_stats)
    return result, stats


def test_rollback_restores_release_and_data(rolled_back, sandbox, mongo, client, synthetic_password):
    result, stats = rolled_back
    assert result.ok
    health = sandbox.health()
    assert (health["version"], health["status"], health["schema"]["actual"]) == ("0.9.0", "ok", 1)

    manifest = json.loads((sandbox.directory / "backups" / "pre-deploy-v1.0.0.manifest.json").read_text())
    facts = database_facts(mongo)
    for name in STABLE:  # verification deleted its synthetic messages again; logins only add sessions
        assert facts[name]["content_sha256"] == manifest["collections"][name]["content_sha256"], name
    assert "message_reactions" not in facts, "the collection v1.0.0 added must be gone"
    assert set(facts) == set(manifest["collections"])
    # the database verification right after the restore compared the data with the backup
    db_checks = {c["name"]: c for checks in stats["verification"]["db"].values() for c in checks}
    assert db_checks, stats["verification"].keys()
    assert all(c["verdict"] in ("pass", "skip") for c in db_checks.values()), db_checks
    compared = [c for c in db_checks.values() if "manifest" in c["name"] or "backup" in c["name"]]
    assert compared and all(c["verdict"] == "pass" for c in compared), db_checks

    # login and messaging work through nginx, maintenance is off
    assert client.login("synthetic-monitor", synthetic_password).status == 200
    conversation = client.conversations().body["conversations"][0]["id"]
    sent = client.send(conversation, "hello after the rollback")
    assert sent.status == 201
    assert client.delete_message(sent.body["message"]["id"]).status == 204
    assert client.delete_message(sent.body["reply"]["id"]).status == 204
    assert not list((sandbox.directory / "nginx" / "conf.d").glob("chatbot-maintenance*"))


def test_writes_since_the_deployment_are_in_the_pre_restore_snapshot(rolled_back, sandbox, deployed_bad_release):
    snapshots = list((sandbox.directory / "backups" / "pre-restore").glob("*INC-PYTEST-1.archive.gz"))
    assert len(snapshots) == 1
    wanted, found = set(deployed_bad_release), set()
    handle, reader = open_archive(str(snapshots[0]))
    with handle:
        for _db, collection, _metadata, documents in reader.collections_data():
            ids = {document_id(raw) for raw in documents}
            if collection == "messages":
                found = ids & wanted
    assert found == wanted


def test_rolled_back_release_is_marked_bad_and_kept(rolled_back, sandbox):
    root = _root(sandbox)
    entries = [json.loads(line) for line in (root / "releases" / "manifest.jsonl").read_text().splitlines()]
    bad = [e for e in entries if e["event"] == "marked_bad"]
    assert bad[-1]["version"] == "v1.0.0"
    assert bad[-1]["incident_id"] == "INC-PYTEST-1"
    assert bad[-1]["actor"] == "Dana (Lead DevOps Engineer)"
    assert (root / "releases" / "v1.0.0" / "BAD_RELEASE").is_file()
    assert os.readlink(root / "current") == "releases/v0.9.0"


def test_second_rollback_changes_nothing(rolled_back, sandbox):
    result = sandbox._run("rollback.yml", extravars=ROLLBACK_VARS)
    assert result.ok
    assert result.changed_count == 0, result.changed_hosts


def test_check_mode_on_the_rolled_back_system_changes_nothing(rolled_back, sandbox):
    result = sandbox._run("rollback.yml", extravars=ROLLBACK_VARS, check=True)
    assert result.ok
    assert result.changed_count == 0, result.changed_hosts


def test_target_not_on_disk_is_built_from_its_git_tag(rolled_back, sandbox):
    """The plan's own path: check the tag out, npm ci, npm run build, then switch (here: back to v1.0.0,
    after an operator cleared its bad mark and its directory was pruned)."""
    root = _root(sandbox)
    shutil.rmtree(root / "releases" / "v1.0.0")
    cleared = sandbox._run("app_rollback.yml", extravars={"rollback_to": "v1.0.0"}, raise_on_failure=False)
    assert not cleared.ok and "marked bad" in _failure_text(cleared), "a bad release is refused as a target"
    entry = {"event": "marked_good", "version": "v1.0.0", "at": "2026-01-01T00:00:00Z", "actor": "pytest"}
    with (root / "releases" / "manifest.jsonl").open("a") as handle:
        handle.write(json.dumps(entry) + "\n")
    result = sandbox._run("app_rollback.yml", extravars={"rollback_to": "v1.0.0", "incident_id": "INC-PYTEST-2"})
    assert result.ok
    assert (root / "releases" / "v1.0.0" / "dist" / "server.js").is_file()
    built = json.loads((root / "releases" / "v1.0.0" / "release.json").read_text())
    assert built["version"] == "v1.0.0" and len(built["git_sha"]) == 40
    assert os.readlink(root / "current") == "releases/v1.0.0"
    assert sandbox.health()["version"] == "1.0.0"


def test_database_password_appears_in_no_output_or_file(rolled_back, sandbox):
    allowed = {
        sandbox.directory / "secrets" / "db-password",
        _root(sandbox) / "shared" / "app.env",
        sandbox.directory / "db" / "ferretdb.env",
    }
    roots = [sandbox.directory, sandbox.runs_dir, Path(os.environ[INCIDENTS_ENV])]
    assert files_holding(DISTINCTIVE_DB_PASSWORD, roots, allowed) == []
