"""The local sandbox against the real services: FerretDB, pm2 cluster, nginx.

Files run in name order: 01 the good release, 02 verification, 03 the bad release, 04 the rollback.
"""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

pytestmark = pytest.mark.sandbox


def test_sandbox_comes_up_from_nothing(sandbox_first_run, sandbox):
    assert sandbox_first_run.ok
    assert sandbox_first_run.changed_count > 0
    assert sandbox.directory.is_dir()
    health = sandbox.health()
    assert health["http_status"] == 200, health
    assert health["status"] == "ok"
    assert health["version"] == "0.9.0"
    assert health["db"]["reachable"] is True
    assert health["schema"] == {"expected": 1, "actual": 1, "compatible": True}


def test_second_provisioning_run_changes_nothing(sandbox):
    result = sandbox.up()
    assert result.ok
    assert result.changed_count == 0, f"changed hosts: {result.changed_hosts} (artifacts {result.artifacts_dir})"


def test_check_mode_changes_nothing(sandbox):
    result = sandbox.up(check=True)
    assert result.ok
    assert result.changed_count == 0


def test_releases_side_by_side_with_current_symlink(sandbox):
    root = sandbox.directory / "app" / "opt" / "chatbot-platform"
    current = root / "current"
    assert current.is_symlink()
    assert os.readlink(current) == "releases/v0.9.0"
    assert (root / "releases" / "v0.9.0" / "dist" / "server.js").is_file()
    env_file = root / "shared" / "app.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


def test_pm2_runs_two_cluster_workers(sandbox):
    from ansible_collections.chatbot.rollback.plugins.module_utils.pm2 import Pm2, select, summarize

    pm2 = Pm2(binary="pm2", home=str(sandbox.directory / "app" / "pm2"))
    app = select(pm2.processes(), "app")
    assert len(app) == 2
    assert {p["exec_mode"] for p in app} == {"cluster_mode"}
    assert summarize(app)["online"] == 2


def test_good_release_login_send_list_through_nginx(client, synthetic_password):
    assert client.login("synthetic-monitor", "wrong-password").status == 401
    login = client.login("synthetic-monitor", synthetic_password)
    assert login.status == 200, login.body
    created = client.create_conversation("pytest: good release")
    assert created.status == 201, created.body
    conversation_id = created.body["conversation"]["id"]
    sent = client.send(conversation_id, "Hello, bot — ça va? 👋")
    assert sent.status == 201, sent.body
    assert sent.body["reply"]["text"]
    listed = client.messages(conversation_id)
    assert listed.status == 200
    texts = [m["text"] for m in listed.body["messages"]]
    assert "Hello, bot — ça va? 👋" in texts
    assert client.delete_message(sent.body["message"]["id"]).status == 204


def test_sessions_are_keyed_by_their_token_hash_and_end_at_logout(client, synthetic_password, mongo):
    login = client.login("synthetic-monitor", synthetic_password)
    assert login.status == 200, login.body
    digest = hashlib.sha256(login.body["token"].encode()).hexdigest()
    session = mongo.sessions.find_one({"_id": digest})
    assert session is not None
    assert set(session) == {"_id", "token_hash", "user_id", "created_at", "expires_at"}
    assert session["token_hash"] == digest
    assert str(session["user_id"]) == login.body["user"]["id"]
    assert client.conversations().status == 200
    assert client.request("POST", "/api/logout").status == 204
    assert mongo.sessions.find_one({"_id": digest}) is None
    assert client.conversations().status == 401


def test_seeded_conversations_index_their_messages_in_order(mongo):
    indexes = {doc["_id"]: doc["message_ids"] for doc in mongo.conversation_messages.find({})}
    conversations = [doc["_id"] for doc in mongo.conversations.find({}, {"_id": 1})]
    assert len(conversations) >= 100
    for conversation in conversations:
        stored = mongo.messages.find({"conversation_id": conversation}, {"_id": 1}).sort([("sent_at", 1), ("_id", 1)])
        assert indexes.get(conversation) == [m["_id"] for m in stored], conversation


def test_seeded_data_set_is_realistic(mongo):
    assert mongo.users.count_documents({}) >= 40
    assert mongo.conversations.count_documents({}) >= 100
    assert mongo.messages.count_documents({}) >= 4000
    message = mongo.messages.find_one({"text": {"$exists": True}})
    assert {"conversation_id", "sender", "text", "sent_at"} <= set(message)
    assert mongo.meta.find_one({"_id": "schema"})["version"] == 1
    assert mongo.users.find_one({"display_name": {"$regex": "[^\\x00-\\x7f]"}}) is not None


def test_metrics_endpoint_counts_requests(client):
    for _ in range(3):
        client.health()
    metrics = client.request("GET", "/metrics")
    assert metrics.status == 200
    assert metrics.body["requests_total"] >= 3
    assert set(metrics.body["latency_ms"]) >= {"p50", "p95", "p99"}
