"""Pure logic of the release manifest: target choice, validation, pruning, parsing."""

from __future__ import annotations

import json

import pytest
from ansible_collections.chatbot.rollback.plugins.module_utils.releases import (
    Manifest,
    ManifestError,
    append_entry,
    check_version,
    current_version,
    previous_good,
    prunable,
    read_manifest,
    releases_on_disk,
    validate_target,
)


def _manifest(*events):
    return Manifest([{"event": e, "version": v, "at": f"2026-01-0{i + 1}T00:00:00Z"}
                     for i, (e, v) in enumerate(events)])


@pytest.mark.parametrize("version", ["v0.9.0", "v10.20.30"])
def test_check_version_accepts(version):
    assert check_version(version) == version


@pytest.mark.parametrize("version", ["", "0.9.0", "v1; rm -rf /", "../../etc", "v1.0", None, 1, "v1.0.0\n"])
def test_check_version_refuses_and_names_the_input(version):
    with pytest.raises(ManifestError, match="malformed"):
        check_version(version)


def test_previous_good_walks_the_deploy_history_not_directory_age():
    manifest = _manifest(("deployed", "v0.8.0"), ("deployed", "v0.9.0"), ("deployed", "v1.0.0"))
    assert previous_good(manifest, "v1.0.0", {"v0.8.0", "v0.9.0", "v1.0.0"}) == "v0.9.0"


def test_previous_good_skips_bad_releases_and_current():
    manifest = _manifest(("deployed", "v0.8.0"), ("deployed", "v0.9.0"), ("marked_bad", "v0.9.0"),
                         ("deployed", "v1.0.0"))
    assert previous_good(manifest, "v1.0.0", set()) == "v0.8.0"


def test_repeated_rollback_does_not_toggle_back_to_the_bad_release():
    manifest = _manifest(("deployed", "v0.9.0"), ("deployed", "v1.0.0"), ("marked_bad", "v1.0.0"),
                         ("rolled_back", "v0.9.0"))
    assert previous_good(manifest, "v0.9.0", {"v0.9.0", "v1.0.0"}) is None


def test_validate_target():
    manifest = _manifest(("deployed", "v0.9.0"), ("deployed", "v1.0.0"), ("marked_bad", "v1.0.0"))
    on_disk = {"v0.9.0", "v1.0.0"}
    assert validate_target(manifest, "v0.9.0", "v1.0.0", on_disk) == []
    assert "marked bad" in validate_target(manifest, "v1.0.0", "v0.9.0", on_disk)[0]
    assert "unknown" in validate_target(manifest, "v9.9.9", "v1.0.0", on_disk, set())[0]
    assert validate_target(manifest, "v0.8.0", "v1.0.0", on_disk, {"v0.8.0"}) == []
    assert validate_target(manifest, "v1.0.0", "v1.0.0", on_disk) == [], "already there is not an error"


def test_prunable_keeps_current_target_and_bad_releases():
    manifest = _manifest(*[("deployed", f"v0.{n}.0") for n in range(1, 7)], ("marked_bad", "v0.6.0"))
    on_disk = {f"v0.{n}.0" for n in range(1, 7)}
    # current v0.6.0 (bad), target v0.5.0; keep 3 -> the target and two more good ones stay
    assert prunable(manifest, 3, {"v0.6.0", "v0.5.0"}, on_disk) == ["v0.1.0", "v0.2.0"]
    assert prunable(manifest, 10, {"v0.6.0", "v0.5.0"}, on_disk) == []


def test_parse_rejects_garbage_with_line_numbers():
    with pytest.raises(ManifestError, match="manifest:2: not JSON"):
        Manifest.parse('{"event": "deployed", "version": "v0.9.0"}\n{broken\n')
    with pytest.raises(ManifestError, match="not a release event"):
        Manifest.parse('{"event": "exploded", "version": "v0.9.0"}\n')


def test_files_round_trip(tmp_path):
    (tmp_path / "releases" / "v0.9.0").mkdir(parents=True)
    (tmp_path / "releases" / "v0.9.0" / "release.json").write_text("{}")
    (tmp_path / "releases" / ".v1.0.0.partial").mkdir()
    (tmp_path / "current").symlink_to("releases/v0.9.0")
    path = str(tmp_path / "releases" / "manifest.jsonl")
    append_entry(path, {"event": "deployed", "version": "v0.9.0", "at": "x"})
    assert read_manifest(path).deploy_history() == ["v0.9.0"]
    assert json.loads((tmp_path / "releases" / "manifest.jsonl").read_text())["version"] == "v0.9.0"
    assert releases_on_disk(str(tmp_path / "releases")) == {"v0.9.0"}
    assert current_version(str(tmp_path)) == "v0.9.0"
    assert read_manifest(str(tmp_path / "missing.jsonl")).entries == []
