"""The release manifest: an append-only JSON-lines log of what was deployed, rolled back and marked bad.

The rollback target is found from where `current` points plus this log, never from directory ages
(a log written into a release, or a repeated rollback, would fool an mtime-based choice).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

VERSION_RE = re.compile(r"v(\d{1,4})\.(\d{1,4})\.(\d{1,4})")  # use fullmatch: "$" accepts a trailing newline
EVENTS = ("deployed", "rolled_back", "marked_bad", "marked_good")
MANIFEST_NAME = "manifest.jsonl"


class ManifestError(ValueError):
    """The manifest or a requested version is unusable."""


def check_version(version: object) -> str:
    """The version when it is vMAJOR.MINOR.PATCH; ManifestError naming the bad input otherwise."""
    if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
        raise ManifestError(f"release version {json.dumps(version)} is malformed: expected vMAJOR.MINOR.PATCH, "
                            "e.g. v0.9.0")
    return version


def version_key(version: str) -> tuple[int, int, int]:
    match = VERSION_RE.fullmatch(version)
    if not match:
        raise ManifestError(f"not a release version: {version!r}")
    return tuple(int(part) for part in match.groups())


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Release:
    version: str
    status: str = "good"
    git_sha: str | None = None
    schema_version: int | None = None
    built_at: str | None = None
    last_deployed_at: str | None = None
    bad: dict | None = None
    on_disk: bool = False

    def as_dict(self) -> dict:
        return {
            "version": self.version, "status": self.status, "git_sha": self.git_sha,
            "schema_version": self.schema_version, "built_at": self.built_at,
            "last_deployed_at": self.last_deployed_at, "bad": self.bad, "on_disk": self.on_disk,
        }


@dataclass
class Manifest:
    entries: list[dict] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str, source: str = "manifest") -> Manifest:
        entries = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError as exc:
                raise ManifestError(f"{source}:{number}: not JSON ({exc})") from exc
            if not isinstance(entry, dict) or entry.get("event") not in EVENTS:
                raise ManifestError(f"{source}:{number}: not a release event")
            check_version(entry.get("version"))
            entries.append(entry)
        return cls(entries)

    def releases(self, on_disk: set[str] | frozenset = frozenset()) -> dict[str, Release]:
        result: dict[str, Release] = {}
        for entry in self.entries:
            release = result.setdefault(entry["version"], Release(entry["version"]))
            for key in ("git_sha", "schema_version", "built_at"):
                if entry.get(key) is not None:
                    setattr(release, key, entry[key])
            if entry["event"] in ("deployed", "rolled_back"):
                release.last_deployed_at = entry.get("at")
            elif entry["event"] == "marked_bad":
                release.status = "bad"
                release.bad = {k: entry.get(k) for k in ("incident_id", "actor", "reason", "at")}
            elif entry["event"] == "marked_good":
                release.status = "good"
                release.bad = None
        for version in on_disk:
            result.setdefault(version, Release(version))
        for version, release in result.items():
            release.on_disk = version in on_disk
        return result

    def deploy_history(self) -> list[str]:
        """Versions in the order they went live (deploys and rollbacks)."""
        return [e["version"] for e in self.entries if e["event"] in ("deployed", "rolled_back")]

    def last_event(self, version: str, event: str) -> dict | None:
        for entry in reversed(self.entries):
            if entry["version"] == version and entry["event"] == event:
                return entry
        return None


def previous_good(manifest: Manifest, current: str | None, on_disk: set[str]) -> str | None:
    """The release that was live before `current` and is good, walking the deploy history backwards.

    Releases marked bad are skipped, and so is `current` itself wherever it appears.
    """
    releases = manifest.releases(on_disk)
    for version in reversed(manifest.deploy_history()):
        if version == current:
            continue
        release = releases.get(version)
        if release and release.status == "good":
            return version
    return None


def prunable(manifest: Manifest, keep: int, protected: set[str], on_disk: set[str]) -> list[str]:
    """Good releases on disk beyond the `keep` most recently live ones; never a protected one or a bad one.

    Releases never deployed count as oldest. Bad releases stay for forensics and do not use up `keep`.
    """
    releases = manifest.releases(on_disk)
    order = {version: index for index, version in enumerate(manifest.deploy_history())}
    good = [v for v in on_disk if releases[v].status == "good" and v not in protected]
    good.sort(key=lambda v: (order.get(v, -1), version_key(v)), reverse=True)
    kept_slots = max(0, keep - len({v for v in protected if v in on_disk and releases[v].status == "good"}))
    return sorted(good[kept_slots:], key=version_key)


def validate_target(manifest: Manifest, target: str, current: str | None, on_disk: set[str],
                    known_tags: set[str] | None = None) -> list[str]:
    """Problems that forbid rolling back to `target` (empty list: it may be used)."""
    problems = []
    releases = manifest.releases(on_disk)
    release = releases.get(target)
    if release is None and not (known_tags and target in known_tags):
        problems.append(f"release {target} is unknown: not in the release manifest, not on disk"
                        + (", not a tag" if known_tags is not None else ""))
        return problems
    if target == current:
        return problems  # already there: a rollback is a no-op, not an error
    if release is not None and release.status == "bad":
        problems.append(f"release {target} is marked bad ({(release.bad or {}).get('reason') or 'no reason given'})")
    return problems


def read_manifest(path: str) -> Manifest:
    try:
        with open(path, encoding="utf-8") as handle:
            return Manifest.parse(handle.read(), path)
    except FileNotFoundError:
        return Manifest()


def append_entry(path: str, entry: dict) -> None:
    """Append one event; the line is written with a single write and fsync'ed."""
    line = json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def releases_on_disk(releases_dir: str) -> set[str]:
    """Release directories that are complete (hold release.json); partial unpacks do not count."""
    try:
        names = os.listdir(releases_dir)
    except FileNotFoundError:
        return set()
    return {name for name in names if VERSION_RE.fullmatch(name)
            and os.path.isfile(os.path.join(releases_dir, name, "release.json"))}


def current_version(root: str) -> str | None:
    try:
        target = os.readlink(os.path.join(root, "current"))
    except OSError:
        return None
    name = os.path.basename(target.rstrip("/"))
    return name if VERSION_RE.fullmatch(name) else None
