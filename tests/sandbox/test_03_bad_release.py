"""Deploy the bad release v1.0.0 over the good one: its migration reshapes data and messaging breaks."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def deployed(sandbox, mongo):
    before = {
        "sample": mongo.messages.find_one(sort=[("_id", 1)]),
        "collections": set(mongo.list_collection_names()),
        "count": mongo.messages.count_documents({}),
    }
    result = sandbox._run("deploy.yml", extravars={"deploy_version": "v1.0.0"})
    return before, result


class TestBadRelease:
    """Deploy v1.0.0 over the good release: its migration reshapes data and messaging breaks."""

    def test_deploy_succeeds_and_reports_new_version(self, deployed, sandbox):
        _, result = deployed
        assert result.ok
        health = sandbox.health()
        assert health["version"] == "1.0.0"
        assert health["status"] == "ok", "the bad release passes a naive health check"

    def test_migration_reshapes_messages_and_bumps_schema(self, deployed, mongo):
        before, _ = deployed
        assert mongo.meta.find_one({"_id": "schema"})["version"] == 2
        assert "message_reactions" in set(mongo.list_collection_names()) - before["collections"]
        after = mongo.messages.find_one({"_id": before["sample"]["_id"]})
        assert "text" not in after and "sender" not in after
        assert after["body"]["text"] == before["sample"]["text"]
        assert after["author"]["kind"] == before["sample"]["sender"]["kind"]
        assert mongo.messages.count_documents({}) == before["count"]

    def test_messaging_returns_5xx(self, deployed, client, synthetic_password):
        assert client.login("synthetic-monitor", synthetic_password).status == 200
        conversations = client.conversations()
        assert conversations.status == 200
        conversation_id = conversations.body["conversations"][0]["id"]
        assert client.send(conversation_id, "are you there?").status >= 500
        assert client.messages(conversation_id).status >= 500
        metrics = client.request("GET", "/metrics")
        assert metrics.body["responses_5xx"] >= 2


def test_deploy_took_a_verified_backup_of_data_and_configuration(deployed, sandbox):
    import json
    import stat
    import tarfile

    from ..conftest import DISTINCTIVE_DB_PASSWORD

    backups = sandbox.directory / "backups"
    manifest = json.loads((backups / "pre-deploy-v1.0.0.manifest.json").read_text())
    assert manifest["release"] == "v0.9.0"
    assert manifest["labels"]["deploying"] == "v1.0.0"
    assert manifest["collections"]["messages"]["count"] >= 4000
    assert len(manifest["sha256"]) == 64
    for name in ("pre-deploy-v1.0.0.archive.gz", "pre-deploy-v1.0.0.manifest.json"):
        assert stat.S_IMODE((backups / name).stat().st_mode) == 0o600
    config = backups / "config-sandbox-app"
    with tarfile.open(config / "pre-deploy-v1.0.0.config.tar.gz") as archive:
        members = {m.name.rsplit("/", 1)[-1]: m for m in archive.getmembers()}
    assert {"chatbot.conf", "ecosystem.config.js", "app.env"} <= set(members)
    assert stat.S_IMODE(members["app.env"].mode) == 0o600, "permissions are kept"
    names = (config / "pre-deploy-v1.0.0.env-names.json").read_text()
    assert "MONGODB_URI" in json.loads(names)["names"]
    assert DISTINCTIVE_DB_PASSWORD not in names, "names, never values"
