"""What a fault leaves behind says why, and blocks nothing: a killed playbook's reason, a half-written backup."""

from __future__ import annotations

import errno

import pytest
from ansible_collections.chatbot.rollback.plugins.module_utils import mongo_backup

from rollbackctl.runner import PlaybookResult


def _result(status: str, rc: int | None, failures=()) -> PlaybookResult:
    return PlaybookResult("db_restore.yml", status, rc, {}, "/artifacts", failures=list(failures))


def test_a_failed_task_is_the_reason():
    failure = {"host": "db", "task": "Restore", "msg": "connection refused"}
    assert _result("failed", 2, [failure]).why() == "db: Restore: connection refused"


def test_a_playbook_killed_by_a_signal_says_so():
    assert "killed" in _result("failed", None).why()
    assert "killed" in _result("failed", -9).why()


def test_an_exit_code_without_a_failed_task_is_named():
    assert "exited with code 250" in _result("failed", 250).why()


def test_an_archive_whose_manifest_cannot_be_written_is_not_kept(tmp_path, monkeypatch):
    def write_archive(_client, _database, handle):
        handle.write(b"archive bytes")
        return {}

    def disk_full(path, _data):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(mongo_backup, "write_archive", write_archive)
    monkeypatch.setattr(mongo_backup, "build_manifest", lambda *args, **kwargs: {})
    monkeypatch.setattr(mongo_backup, "write_json_atomic", disk_full)
    with pytest.raises(OSError, match="No space left"):
        mongo_backup.dump("mongodb://127.0.0.1:1/chatbot", str(tmp_path / "snap.archive.gz"), "pymongo",
                          client=object())
    assert list(tmp_path.iterdir()) == [], "neither the archive nor its partial file is left"
