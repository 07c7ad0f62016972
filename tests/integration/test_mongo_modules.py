"""The MongoDB modules, driven through ansible-runner against a real FerretDB started for this file.

Sequence: backup -> check -> change the data -> restore in check mode (nothing changes) -> restore ->
the database matches the manifest again -> restore again (not changed). Then the refusals (tampered or
missing archive, unreachable server) and the secrets. The compatibility tests with the real MongoDB
database tools run when mongodump/mongorestore are on PATH or in $MONGO_TOOLS_BIN, and skip otherwise.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import ansible_runner
import pymongo
import pytest
import yaml
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_backup import (
    build_manifest,
    check,
    dump,
    file_sha256,
    load_manifest,
    manifest_path_for,
    read_archive_facts,
    write_json_atomic,
)
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_common import connect
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_snapshot import database_facts
from bson import Binary, Int64, ObjectId

from tests.ferretdb_server import FerretDBError, ferretdb

PROJECT = Path(__file__).resolve().parents[2]
DATABASE = "chatbot-platform"
USER = "chatbot"
# Distinctive, so that finding it anywhere it must not be is unambiguous.
PASSWORD = f"Pw-{secrets.token_hex(10)}-Zq"
UTC = datetime.timezone.utc  # noqa: UP017


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _uri(port: int, database: str = DATABASE) -> str:
    return f"mongodb://{USER}:{PASSWORD}@127.0.0.1:{port}/{database}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A fresh FerretDB (SQLite backend, authentication on) on a free port; killed at teardown."""
    try:
        with ferretdb(tmp_path_factory.mktemp("ferretdb"), database=DATABASE, user=USER, password=PASSWORD) as fdb:
            client = pymongo.MongoClient(fdb.uri, serverSelectionTimeoutMS=500)
            try:
                yield {"port": fdb.port, "uri": fdb.uri, "client": client, "db": client.get_database(DATABASE)}
            finally:
                client.close()
    except FerretDBError as exc:
        pytest.fail(str(exc))


def load_data(db) -> None:
    """Chatbot-like data within what both MongoDB and FerretDB v1 accept (no nested arrays...)."""
    for name in db.list_collection_names():
        db.drop_collection(name)
    start = datetime.datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
    names = ["Zoë Ålund", "李雷", "Ngozi Okafor", "José Núñez", "Мария", "O'Brien \"Bob\""]
    db.users.insert_many([
        {"_id": ObjectId(f"65f1{i:020x}"), "email": f"user{i}@example.org", "name": names[i % len(names)],
         "created_at": start + datetime.timedelta(hours=i), "active": i % 4 != 0, "visits": Int64(i * 10**10),
         "profile": {"locale": ["de", "en", "ja"][i % 3], "tags": ["beta", "vip"][: i % 3], "score": i * 1.5,
                     "avatar": Binary(bytes([i, 0, 255]))}}
        for i in range(40)])
    db.users.create_index("email", unique=True)
    db.users.create_index([("profile.locale", 1), ("created_at", -1)], name="locale_created")
    db.conversations.insert_many([
        {"_id": f"conv-{i:04d}", "user_id": ObjectId(f"65f1{i % 40:020x}"),
         "title": f"Bestellung #{i} \N{EN DASH} Frage 🤖",
         "turns": [{"role": "user", "text": "Wo ist mein Paket?", "at": start},
                   {"role": "bot", "text": "Einen Moment… ✓", "at": start + datetime.timedelta(seconds=3)}],
         "closed_at": None if i % 2 else start + datetime.timedelta(days=1)}
        for i in range(25)])
    # Inserted out of _id order: mongodump then writes them in natural (not _id) order.
    messages = [{"_id": i, "conversation_id": f"conv-{i % 25:04d}", "text": f"message {i} ✉",
                 "at": start + datetime.timedelta(minutes=i), "meta": {"tokens": i * 7, "model": "m-1"}}
                for i in range(300)]
    random.Random(1).shuffle(messages)  # noqa: S311 - reproducible order, not cryptography
    db.messages.insert_many(messages)
    db.messages.create_index([("conversation_id", 1), ("at", 1)], name="conversation_at")
    db.settings.insert_one({"_id": "global", "maintenance": False,
                            "greeting": {"de": "Hallo!", "ja": "こんにちは"}})
    db.create_collection("audit_log", capped=True, size=1024 * 1024)
    db.audit_log.insert_many([{"event": "deploy", "release": "v1.3.0", "at": start}])
    db.create_collection("feedback")


def change_data(db) -> None:
    """What a bad release might do."""
    db.users.update_many({"active": False}, {"$set": {"active": True, "migrated_by": "v1.4.0"}})
    db.users.create_index("name")
    db.messages.insert_many([{"_id": 1000 + i, "text": "new"} for i in range(5)])
    db.experiments.insert_one({"_id": "exp-1", "variant": "B"})
    db.drop_collection("settings")


class Runs:
    """Runs one-play playbooks with ansible-runner; results per task name."""

    def __init__(self, root: Path, port: int, tools_dir: str | None = None) -> None:
        self.root = root
        self.port = port
        self.tools_dir = tools_dir
        self.count = 0
        self.results: list[dict] = []

    def run(self, tasks: list[dict], check: bool = False, extra_vars: dict | None = None) -> dict[str, dict]:
        self.count += 1
        private = self.root / f"run{self.count}"
        (private / "project").mkdir(parents=True)
        # The secret goes in a vars file next to the playbook, not through envvars or extravars:
        # ansible-runner writes those into artifacts/<ident>/command, even with suppress_env_files.
        secrets_file = private / "project" / "secrets.yml"
        secrets_file.write_text(yaml.safe_dump({"test_mongo_uri": _uri(self.port),
                                                "test_bad_uri": _uri(_free_port()), **(extra_vars or {})}))
        secrets_file.chmod(0o600)
        play = [{"name": "Test", "hosts": "localhost", "gather_facts": False, "vars_files": ["secrets.yml"],
                 "tasks": tasks}]
        (private / "project" / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
        path = os.environ.get("PATH", "")
        if self.tools_dir:
            path = f"{self.tools_dir}:{path}"
        runner = ansible_runner.run(
            private_data_dir=str(private), playbook="play.yml", ident="run",
            inventory=f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}",
            envvars={"ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"), "PATH": path},
            cmdline="--check" if check else None, quiet=True, suppress_env_files=True)
        results = {}
        for event in runner.events:
            if event["event"] in ("runner_on_ok", "runner_on_failed"):
                data = event["event_data"]
                results[data["task"]] = dict(data["res"], failed=event["event"] == "runner_on_failed")
        self.results.append(results)
        missing = [task["name"] for task in tasks if task["name"] not in results]
        assert not missing, (f"tasks without a result {missing}: {runner.status} rc={runner.rc}\n"
                             f"{runner.stdout.read()}")
        return results


def task(name: str, module: str, ignore_errors: bool = False, check_mode: bool = False, **args) -> dict:
    spec = {"name": name, f"chatbot.rollback.{module}": args}
    if ignore_errors:
        spec["ignore_errors"] = True
    if check_mode:
        spec["check_mode"] = True
    return spec


URI = "{{ test_mongo_uri }}"


@pytest.fixture(scope="module")
def runs(server, tmp_path_factory) -> Runs:
    return Runs(tmp_path_factory.mktemp("runs"), server["port"])


@pytest.fixture(scope="module")
def backup_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("backups")


def _mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


# ---------------------------------------------------------------------------------------------


def test_backup_change_restore_cycle(server, runs, backup_dir):
    db = server["db"]
    load_data(db)
    original = database_facts(db)
    archive = backup_dir / "pre-v1.4.0.archive.gz"
    manifest = backup_dir / "pre-v1.4.0.manifest.json"

    results = runs.run([
        task("backup", "mongodb_backup", uri=URI, dest=str(archive), engine="pymongo", release="v1.4.0",
             labels={"reason": "pre-deploy"}),
        task("backup again", "mongodb_backup", uri=URI, dest=str(archive), engine="pymongo"),
        task("check", "mongodb_backup_check", manifest=str(manifest)),
        task("snapshot", "mongodb_snapshot", uri=URI, compare_to=str(manifest), fail_on_difference=True),
        task("dry backup", "mongodb_backup", check_mode=True, uri=URI,
             dest=str(backup_dir / "dry.archive.gz")),
    ])
    backup = results["backup"]
    assert backup["changed"] is True and not backup["failed"], backup
    assert backup["engine"] == "pymongo"
    assert backup["archive"] == str(archive) and backup["manifest"] == str(manifest)
    assert backup["collections"] == {name: facts["count"] for name, facts in original.items()}
    assert backup["collections"]["messages"] == 300
    assert results["backup again"]["changed"] is False
    assert results["backup again"]["sha256"] == backup["sha256"]
    assert results["check"]["intact"] is True and results["check"]["problems"] == []
    assert results["check"]["release"] == "v1.4.0" and results["check"]["labels"] == {"reason": "pre-deploy"}
    assert results["snapshot"]["matches"] is True and results["snapshot"]["changed"] is False
    assert results["snapshot"]["collections"] == original
    assert _mode(archive) == _mode(manifest) == "0o600"
    assert not list(backup_dir.glob("*.partial"))
    data = load_manifest(str(manifest))
    assert data["collections"] == original
    assert data["server_version"] and data["database"] == DATABASE

    # Check mode of a new backup writes nothing.
    assert results["dry backup"]["changed"] is True
    assert results["dry backup"]["collections"]["messages"] == 300
    assert not list(backup_dir.glob("dry*"))

    change_data(db)
    changed = database_facts(db)
    assert changed != original

    results = runs.run([
        task("dry restore", "mongodb_restore", check_mode=True, uri=URI, manifest=str(manifest),
             engine="pymongo"),
        task("snapshot after dry restore", "mongodb_snapshot", uri=URI),
        task("restore", "mongodb_restore", uri=URI, manifest=str(manifest), engine="pymongo"),
        task("snapshot", "mongodb_snapshot", uri=URI, compare_to=str(manifest), fail_on_difference=True),
        task("restore again", "mongodb_restore", uri=URI, manifest=str(manifest), engine="pymongo"),
    ])
    dry = results["dry restore"]
    assert dry["changed"] is True and not dry["failed"], dry
    assert dry["would_restore"] == ["messages", "settings", "users"]
    assert dry["would_drop"] == ["experiments"]
    assert "collection 'settings' is missing (expected 1 documents)" in dry["differences"]
    assert dry["after"] == dry["before"] == {name: facts["count"] for name, facts in changed.items()}
    assert "restored" not in dry
    assert results["snapshot after dry restore"]["collections"] == changed, "check mode changed the database"

    restore = results["restore"]
    assert restore["changed"] is True and not restore["failed"], restore
    assert restore["restored"] == {"messages": 300, "settings": 1, "users": 40}
    assert restore["dropped"] == ["experiments"]
    assert restore["verify_differences"] == []
    assert restore["before"]["experiments"] == 1 and "experiments" not in restore["after"]
    assert restore["after"] == {name: facts["count"] for name, facts in original.items()}
    assert results["snapshot"]["matches"] is True
    assert results["restore again"]["changed"] is False
    assert results["restore again"]["would_restore"] == [] and results["restore again"]["would_drop"] == []
    assert database_facts(db) == original
    assert "experiments" not in db.list_collection_names()


def test_restore_keeps_extra_collections_when_asked_and_restores_into_another_database(server, runs,
                                                                                       backup_dir):
    db = server["db"]
    load_data(db)
    manifest = backup_dir / "keep.manifest.json"
    db.experiments.insert_one({"_id": 1})
    results = runs.run([
        task("backup", "mongodb_backup", uri=URI, dest=str(backup_dir / "keep.archive.gz"), engine="pymongo"),
        task("restore copy", "mongodb_restore", uri=URI, manifest=str(manifest), engine="pymongo",
             target_database="chatbot-copy"),
    ])
    assert results["restore copy"]["changed"] is True, results["restore copy"]
    copy = server["client"].get_database("chatbot-copy")
    assert database_facts(copy) == database_facts(db)

    db.users.delete_one({"email": "user1@example.org"})
    db.extra.insert_one({"_id": 1})
    results = runs.run([task("restore", "mongodb_restore", uri=URI, manifest=str(manifest), engine="pymongo",
                             drop_extra_collections=False)])
    restore = results["restore"]
    assert restore["changed"] is True and restore["would_restore"] == ["users"], restore
    assert restore["would_drop"] == [] and restore["dropped"] == []
    assert db.extra.count_documents({}) == 1
    assert db.users.count_documents({}) == 40
    server["client"].drop_database("chatbot-copy")


def test_manifest_from_the_bytes_written_equals_the_archive_read_back(server, backup_dir):
    db = server["db"]
    load_data(db)  # messages inserted out of _id order: the hasher sorts them
    client = connect({"uri": server["uri"]})
    archive = backup_dir / "written.archive.gz"
    manifest = dump(server["uri"], str(archive), "pymongo", client=client)
    client.close()
    assert manifest["collections"] == read_archive_facts(str(archive))["collections"] == database_facts(db)
    assert manifest["sha256"] == file_sha256(str(archive))[0]
    assert check(manifest_path_for(str(archive))) == []


def _pw(seed: str) -> dict:
    return {"algo": "scrypt", "salt": seed * 4, "hash": seed * 16}


def _session(user_id, created, hours: float = 12, token: str | None = None, id_is_hash: bool = False) -> dict:
    token_hash = token or secrets.token_hex(32)
    doc = {"token_hash": token_hash, "user_id": user_id, "created_at": created,
           "expires_at": created + datetime.timedelta(hours=hours)}
    return {"_id": token_hash, **doc} if id_is_hash else doc


def test_sessions_created_after_the_backup_are_kept_when_safe(server, runs, backup_dir):
    db = server["db"]
    for name in db.list_collection_names():
        db.drop_collection(name)
    users = {name: ObjectId() for name in ("ana", "ben", "cem")}
    db.users.insert_many([{"_id": uid, "username": name, "password": _pw(name[0])} for name, uid in users.items()])
    db.users.create_index("username", unique=True, name="username_unique")
    hour_ago = datetime.datetime.now(UTC) - datetime.timedelta(hours=1)
    old = _session(users["ana"], hour_ago)
    db.sessions.insert_many([old, _session(users["ben"], hour_ago)])
    db.sessions.create_index("token_hash", unique=True, name="token_hash_unique")
    db.messages.insert_many([{"_id": i, "text": f"m{i}"} for i in range(20)])
    manifest = backup_dir / "sessions.manifest.json"
    runs.run([task("backup", "mongodb_backup", uri=URI, dest=str(backup_dir / "sessions.archive.gz"),
                   engine="pymongo")])
    backup_sessions = database_facts(db)["sessions"]
    time.sleep(1.1)  # created_at after the manifest's (whole seconds)

    # After the backup: ana logs in again (kept; its _id is the token hash), ben's session expired (dropped),
    # cem changes the password then logs in (dropped: the backup has the old password), dan is new (dropped:
    # not in the backup); ana's old session is logged out (it comes back, as the backup has it).
    now = datetime.datetime.now(UTC)
    kept = _session(users["ana"], now, id_is_hash=True)
    db.sessions.delete_one({"token_hash": old["token_hash"]})
    db.sessions.insert_many([kept, _session(users["ben"], now, hours=-0.01)])
    db.users.update_one({"_id": users["cem"]}, {"$set": {"password": _pw("z")}})
    db.sessions.insert_one(_session(users["cem"], now))
    dan = db.users.insert_one({"username": "dan", "password": _pw("d")}).inserted_id
    db.sessions.insert_one(_session(dan, now))
    db.messages.insert_one({"_id": 99, "text": "new"})

    results = runs.run([
        task("dry", "mongodb_restore", check_mode=True, uri=URI, manifest=str(manifest), engine="pymongo",
             live_sessions="keep"),
        task("restore", "mongodb_restore", uri=URI, manifest=str(manifest), engine="pymongo", live_sessions="keep"),
        task("again", "mongodb_restore", uri=URI, manifest=str(manifest), engine="pymongo", live_sessions="keep"),
        task("compare keep", "mongodb_snapshot", uri=URI, compare_to=str(manifest), live_sessions="keep"),
        task("compare strict", "mongodb_snapshot", uri=URI, compare_to=str(manifest)),
    ])
    assert results["dry"]["changed"] and "sessions" in results["dry"]["would_restore"], results["dry"]
    restore = results["restore"]
    assert not restore["failed"] and restore["changed"], restore
    assert restore["sessions"] == {"policy": "keep", "kept": 1, "dropped": 3}, restore
    assert restore["verify_differences"] == []
    hashes = {doc["token_hash"] for doc in db.sessions.find()}
    assert hashes == {old["token_hash"], kept["token_hash"], *[d["token_hash"] for d in db.sessions.find(
        {"created_at": {"$lt": now}})]}
    assert db.sessions.count_documents({}) == 3  # the backup's two and ana's new one
    assert db.sessions.find_one({"_id": kept["token_hash"]})["user_id"] == users["ana"]
    assert db.users.count_documents({}) == 3 and db.messages.count_documents({}) == 20
    assert results["again"]["changed"] is False, results["again"]
    assert results["compare keep"]["matches"] is True, results["compare keep"]["differences"]
    assert results["compare strict"]["matches"] is False
    assert any("'sessions'" in d for d in results["compare strict"]["differences"])

    results = runs.run([
        task("strict", "mongodb_restore", uri=URI, manifest=str(manifest), engine="pymongo",
             verify_method="read_back"),
        task("strict again", "mongodb_restore", uri=URI, manifest=str(manifest), engine="pymongo"),
    ])
    assert results["strict"]["changed"] and results["strict"]["would_restore"] == ["sessions"], results["strict"]
    assert "sessions" not in results["strict"]
    assert results["strict again"]["changed"] is False
    assert database_facts(db)["sessions"] == backup_sessions


def test_restore_with_the_pre_restore_snapshot_as_current_state(server, runs, backup_dir):
    db = server["db"]
    load_data(db)
    manifest = backup_dir / "current.manifest.json"
    runs.run([task("backup", "mongodb_backup", uri=URI, dest=str(backup_dir / "current.archive.gz"),
                   engine="pymongo")])
    original = database_facts(db)
    change_data(db)
    snapshot = backup_dir / "pre-restore.manifest.json"
    results = runs.run([
        task("snapshot", "mongodb_backup", uri=URI, dest=str(backup_dir / "pre-restore.archive.gz"),
             engine="pymongo"),
        task("quick check", "mongodb_backup_check", manifest=str(snapshot), content=False),
        task("restore", "mongodb_restore", uri=URI, manifest=str(manifest), engine="pymongo",
             current_manifest=str(snapshot)),
        task("wrong database", "mongodb_restore", ignore_errors=True, uri=URI, manifest=str(manifest),
             engine="pymongo", target_database="elsewhere", current_manifest=str(snapshot)),
    ])
    assert results["quick check"]["intact"] is True
    restore = results["restore"]
    assert restore["changed"] and restore["would_restore"] == ["messages", "settings", "users"], restore
    assert restore["dropped"] == ["experiments"] and restore["verify_differences"] == []
    assert restore["backup_sha256"] == load_manifest(str(manifest))["sha256"]
    assert database_facts(db) == original
    assert load_manifest(str(snapshot))["collections"]["experiments"]["count"] == 1  # the snapshot keeps it all
    assert results["wrong database"]["failed"] and "describes database" in results["wrong database"]["msg"]


def test_refusals_leave_the_database_untouched(server, runs, backup_dir):
    db = server["db"]
    load_data(db)
    uri = server["uri"]
    client = connect({"uri": uri})
    good = backup_dir / "refusal.archive.gz"
    dump(uri, str(good), "pymongo", client=client)
    client.close()
    tampered = backup_dir / "tampered.archive.gz"
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    manifest = load_manifest(manifest_path_for(str(good)))
    manifest["archive"] = tampered.name
    write_json_atomic(manifest_path_for(str(tampered)), manifest)
    gone = backup_dir / "gone.archive.gz"
    manifest["archive"] = gone.name
    write_json_atomic(manifest_path_for(str(gone)), manifest)

    change_data(db)
    before = database_facts(db)
    bad_port = _free_port()
    results = runs.run([
        task("restore tampered", "mongodb_restore", ignore_errors=True, uri=URI,
             manifest=manifest_path_for(str(tampered))),
        task("check tampered", "mongodb_backup_check", ignore_errors=True,
             manifest=manifest_path_for(str(tampered))),
        task("check tampered no fail", "mongodb_backup_check", manifest=manifest_path_for(str(tampered)),
             fail_on_problem=False),
        task("check missing", "mongodb_backup_check", ignore_errors=True,
             manifest=manifest_path_for(str(gone))),
        task("restore missing", "mongodb_restore", ignore_errors=True, uri=URI,
             manifest=manifest_path_for(str(gone))),
        task("snapshot unreachable", "mongodb_snapshot", ignore_errors=True,
             uri=f"mongodb://{USER}:{PASSWORD}@127.0.0.1:{bad_port}/{DATABASE}".replace(PASSWORD, "{{ pw }}"),
             server_selection_timeout_ms=500),
        task("backup unreachable", "mongodb_backup", ignore_errors=True, uri="{{ test_bad_uri }}",
             dest=str(backup_dir / "never.archive.gz"), server_selection_timeout_ms=500),
        task("backup over tampered", "mongodb_backup", ignore_errors=True, uri=URI, dest=str(tampered)),
        task("snapshot bad password", "mongodb_snapshot", ignore_errors=True,
             uri=f"mongodb://{USER}:wrong-password@127.0.0.1:{server['port']}/{DATABASE}"),
    ], extra_vars={"pw": PASSWORD})

    refused = results["restore tampered"]
    assert refused["failed"] and refused["msg"].startswith("refusing to restore"), refused
    assert "tampered or corrupt" in refused["msg"]
    assert results["check tampered"]["failed"] and "tampered or corrupt" in results["check tampered"]["msg"]
    assert any("corrupt" in p or "CRC" in p for p in results["check tampered"]["problems"][1:]), \
        results["check tampered"]["problems"]
    no_fail = results["check tampered no fail"]
    assert not no_fail["failed"] and no_fail["intact"] is False and no_fail["problems"]
    assert results["check missing"]["failed"]
    assert f"archive {gone} is missing" in results["check missing"]["msg"]
    assert results["restore missing"]["failed"] and "is missing" in results["restore missing"]["msg"]
    for name in ("snapshot unreachable", "backup unreachable"):
        failure = results[name]
        assert failure["failed"], failure
        assert "cannot reach MongoDB at 127.0.0.1:" in failure["msg"], failure["msg"]
        assert PASSWORD not in json.dumps(failure)
    assert f"127.0.0.1:{bad_port}" in results["snapshot unreachable"]["msg"]
    assert results["snapshot bad password"]["failed"]
    assert "authentication" in results["snapshot bad password"]["msg"]
    assert "wrong-password" not in json.dumps(results["snapshot bad password"])
    assert not (backup_dir / "never.archive.gz").exists()
    over = results["backup over tampered"]
    assert over["failed"] and "is not an intact backup" in over["msg"] and "force=true" in over["msg"], over
    assert tampered.read_bytes() == bytes(data), "a tampered backup was overwritten without force"
    assert database_facts(db) == before, "a refused restore changed the database"


def test_secrets_appear_nowhere(server, runs, backup_dir):
    # Every run of this file so far, plus a backup with the tools' engine selection left to auto.
    load_data(server["db"])
    runs.run([task("backup", "mongodb_backup", uri=URI, dest=str(backup_dir / "secret.archive.gz"),
                   force=True),
              task("restore", "mongodb_restore", uri=URI, manifest=str(backup_dir / "secret.manifest.json"))])
    assert PASSWORD not in json.dumps(runs.results)
    leaks = []
    for run in runs.root.iterdir():
        for path in (run / "artifacts").rglob("*"):
            if path.is_file() and PASSWORD.encode() in path.read_bytes():
                leaks.append(str(path))
    for path in backup_dir.iterdir():
        if PASSWORD.encode() in path.read_bytes():
            leaks.append(str(path))
    assert not leaks
    assert runs.count >= 5


# ---------------------------------------------------------------------------------------------
# Compatibility with the real MongoDB database tools


def _tools_dir() -> str | None:
    directory = os.environ.get("MONGO_TOOLS_BIN")
    if directory and all((Path(directory) / tool).is_file() for tool in ("mongodump", "mongorestore")):
        return directory
    mongodump, mongorestore = shutil.which("mongodump"), shutil.which("mongorestore")
    if mongodump and mongorestore:
        return str(Path(mongodump).parent)
    return None


@pytest.fixture(scope="module")
def tools(server, tmp_path_factory):
    directory = _tools_dir()
    if directory is None:
        pytest.skip("mongodump/mongorestore are neither on PATH nor in $MONGO_TOOLS_BIN")
    return {"dir": directory, "runs": Runs(tmp_path_factory.mktemp("tool-runs"), server["port"], directory)}


def _tool(tools, name: str, args: list[str], tmp_path: Path, uri: str) -> subprocess.CompletedProcess:
    config = tmp_path / f"{name}.yml"
    config.write_text(f"uri: {json.dumps(uri)}\n")
    config.chmod(0o600)
    proc = subprocess.run([str(Path(tools["dir"]) / name), f"--config={config}", *args], capture_output=True,
                          text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def _plain_uri(port: int) -> str:
    return f"mongodb://{USER}:{PASSWORD}@127.0.0.1:{port}/?authSource={DATABASE}"


def test_pymongo_archive_restores_with_real_mongorestore(server, tools, backup_dir, tmp_path):
    db = server["db"]
    load_data(db)
    expected = database_facts(db)
    results = tools["runs"].run([
        task("backup", "mongodb_backup", uri=URI, dest=str(backup_dir / "py.archive.gz"), engine="pymongo"),
        task("restore", "mongodb_restore", uri=URI, manifest=str(backup_dir / "py.manifest.json"),
             engine="mongorestore", target_database="compat-mr"),
    ])
    restore = results["restore"]
    assert restore["changed"] and restore["engine"] == "mongorestore", restore
    assert restore["verify_differences"] == []
    assert database_facts(server["client"].get_database("compat-mr")) == expected

    # mongorestore alone (no help from this toolkit) accepts the archive and restores the same bytes. Its
    # own index restore is skipped: it adds "ns" to index specs, which FerretDB v1 rejects.
    _tool(tools, "mongorestore", ["--archive=" + str(backup_dir / "py.archive.gz"), "--gzip", "--drop",
                                  "--noIndexRestore", f"--nsFrom={DATABASE}.*", "--nsTo=compat-raw.*",
                                  f"--nsInclude={DATABASE}.*"], tmp_path, _plain_uri(server["port"]))
    raw = database_facts(server["client"].get_database("compat-raw"))
    assert {name: (f["count"], f["content_sha256"], f["options"]) for name, f in raw.items()} == {
        name: (f["count"], f["content_sha256"], f["options"]) for name, f in expected.items()}
    server["client"].drop_database("compat-mr")
    server["client"].drop_database("compat-raw")


def test_real_mongodump_archive_reads_and_restores_with_pymongo(server, tools, backup_dir, tmp_path):
    db = server["db"]
    load_data(db)
    expected = database_facts(db)
    archive = backup_dir / "real.archive.gz"
    _tool(tools, "mongodump", [f"--archive={archive}", "--gzip", f"--db={DATABASE}"], tmp_path,
          _plain_uri(server["port"]))
    manifest = build_manifest(str(archive), engine="mongodump", database=DATABASE)
    assert manifest["collections"] == expected  # our reader, CRCs checked, messages sorted back to _id order
    write_json_atomic(manifest_path_for(str(archive)), manifest)

    change_data(db)
    results = tools["runs"].run([
        task("check", "mongodb_backup_check", manifest=manifest_path_for(str(archive))),
        task("restore", "mongodb_restore", uri=URI, manifest=manifest_path_for(str(archive)),
             engine="pymongo"),
    ])
    assert results["check"]["intact"] is True
    restore = results["restore"]
    assert restore["changed"] and restore["verify_differences"] == [], restore
    assert database_facts(db) == expected


def test_mongodump_engine_of_the_backup_module(server, tools, backup_dir):
    db = server["db"]
    load_data(db)
    expected = database_facts(db)
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    configs_before = set(tmp.glob(".mongo-tool-*"))
    results = tools["runs"].run([
        task("backup", "mongodb_backup", uri=URI, dest=str(backup_dir / "md.archive.gz"), engine="auto"),
        task("check", "mongodb_backup_check", manifest=str(backup_dir / "md.manifest.json")),
    ])
    backup = results["backup"]
    assert backup["changed"] and backup["engine"] == "mongodump", backup
    assert results["check"]["intact"] is True
    assert load_manifest(str(backup_dir / "md.manifest.json"))["collections"] == expected
    assert _mode(backup_dir / "md.archive.gz") == "0o600"
    assert set(tmp.glob(".mongo-tool-*")) == configs_before, "a --config file with the URI was left behind"

    change_data(db)
    results = tools["runs"].run([task("restore", "mongodb_restore", uri=URI,
                                      manifest=str(backup_dir / "md.manifest.json"))])
    restore = results["restore"]
    assert restore["engine"] == "mongorestore"
    assert restore["changed"] and restore["verify_differences"] == [], restore
    assert database_facts(db) == expected
    for path in [*backup_dir.iterdir(), *tools["runs"].root.rglob("artifacts/**/*")]:
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
