"""The lock's identity is the platform: every spelling of one inventory is one platform, two sandboxes two."""

from __future__ import annotations

import shutil

import pytest

from rollbackctl.errors import LockHeld, UsageError
from rollbackctl.orchestrator import lock_for
from rollbackctl.target import identify


@pytest.fixture
def inventories(project):
    return project / "inventories"


def test_spellings_of_one_inventory_are_one_platform(inventories, tmp_path, monkeypatch):
    monkeypatch.setenv("ROLLBACK_SANDBOX_PORT_BASE", "18080")
    monkeypatch.delenv("ROLLBACK_SANDBOX_DIR", raising=False)
    link = tmp_path / "linked"
    link.symlink_to(inventories / "local")
    spellings = [inventories / "local", inventories / "local" / "hosts.yml", inventories / "local" / ".." / "local",
                 link, link / "hosts.yml"]
    keys = {identify(path).key for path in spellings}
    assert len(keys) == 1, keys
    assert "127.0.0.1:18080" in identify(inventories / "local").description


def test_the_rendered_platform_tells_sandboxes_apart(inventories, monkeypatch):
    monkeypatch.delenv("ROLLBACK_SANDBOX_DIR", raising=False)
    keys = set()
    for base in ("18080", "28080", "31080"):
        monkeypatch.setenv("ROLLBACK_SANDBOX_PORT_BASE", base)
        platform = identify(inventories / "local")
        assert f"127.0.0.1:{base}" in platform.description
        keys.add(platform.key)
    assert len(keys) == 3
    assert identify(inventories / "production").key not in keys


def test_an_inventory_copy_elsewhere_is_another_sandbox(inventories, tmp_path, monkeypatch):
    """The local inventory places its sandbox next to itself: a copy elsewhere is another platform."""
    monkeypatch.delenv("ROLLBACK_SANDBOX_DIR", raising=False)
    copy = tmp_path / "inventories" / "local"
    shutil.copytree(inventories / "local", copy)
    assert identify(copy).key != identify(inventories / "local").key
    monkeypatch.setenv("ROLLBACK_SANDBOX_DIR", str(tmp_path / "one-sandbox"))
    assert identify(copy).key == identify(inventories / "local").key


def test_an_inventory_without_platform_hosts_is_refused(tmp_path):
    other = tmp_path / "hosts.ini"
    other.write_text("[web]\nw1\n")
    with pytest.raises(UsageError, match="no host in the groups app or db"):
        identify(other)


def test_two_spellings_cannot_both_hold_the_lock(inventories, tmp_path, monkeypatch):
    monkeypatch.delenv("ROLLBACK_SANDBOX_DIR", raising=False)
    first = lock_for(tmp_path, inventories / "local")
    first.acquire("INC-ONE")
    try:
        second = lock_for(tmp_path, inventories / "local" / "hosts.yml")
        assert second.path == first.path
        with pytest.raises(LockHeld, match="INC-ONE"):
            second.acquire("INC-TWO")
    finally:
        first.release()
