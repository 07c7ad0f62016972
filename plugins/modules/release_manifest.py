#!/usr/bin/python
"""Ansible module: read and record the release manifest of a deployment root."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_manifest
short_description: Query the releases of a deployment root and record deployments, rollbacks and bad releases
description:
  - The manifest is C(<root>/releases/manifest.jsonl), an append-only log of events
    (C(deployed), C(rolled_back), C(marked_bad), C(marked_good)) with version, git sha, schema version and build time.
  - O(state=query) is read-only and returns every release with its status, which release C(current) points
    to, the previous good release (walking the deploy history back from C(current), skipping releases marked
    bad) and, when O(version) is given, whether it may be rolled back to.
  - The other states append an event unless the manifest already says so (idempotent). A release marked bad
    also gets a C(BAD_RELEASE) file in its directory saying who, when and why.
  - Releases are never chosen by directory age.
version_added: "0.1.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
options:
  root:
    description: Deployment root holding C(releases/) and the C(current) symlink.
    type: path
    required: true
  state:
    description: What to do.
    type: str
    choices: [query, deployed, rolled_back, bad, good]
    default: query
  version:
    description:
      - Release version (vMAJOR.MINOR.PATCH). Required unless O(state=query).
      - With O(state=query), the version to validate as a rollback target;
        V(previous) asks for the previous good release.
    type: str
  release_info:
    description: Facts of the release to record (C(git_sha), C(schema_version), C(built_at)); read from
      C(releases/<version>/release.json) when omitted.
    type: dict
  incident_id:
    description: Incident that marked the release bad or rolled back.
    type: str
  actor:
    description: Who decided (recorded with O(state=bad) and O(state=rolled_back)).
    type: str
  reason:
    description: Why (recorded with O(state=bad)).
    type: str
  known_tags:
    description: Release tags of the repository; a target that is only a tag (not on disk) is then valid.
    type: list
    elements: str
  keep:
    description:
      - With O(state=query), also return RV(prunable), the good releases on disk beyond the O(keep) most recently
        live ones. C(current), O(version) and releases marked bad are never prunable.
    type: int
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Shows where C(current) points and the status of every release before and after the event.
"""

EXAMPLES = r"""
- name: Find the rollback target
  chatbot.rollback.release_manifest:
    root: /opt/chatbot-platform
    version: previous
  register: releases

- name: Mark the rolled-back release bad
  chatbot.rollback.release_manifest:
    root: /opt/chatbot-platform
    state: bad
    version: v1.0.0
    incident_id: 20261128T1200Z-messaging-5xx
    actor: Dana (Lead DevOps Engineer)
    reason: messaging returns 5xx
"""

RETURN = r"""
current:
  description: The version C(current) points to, or null.
  returned: always
  type: str
  sample: v1.0.0
previous_good:
  description: The release live before C(current) that is not marked bad, or null.
  returned: always
  type: str
  sample: v0.9.0
releases:
  description: Every known release with status (V(good) or V(bad)), git sha, schema version, on disk, bad details.
  returned: always
  type: list
  elements: dict
prunable:
  description: Releases that may be removed (with O(keep)).
  returned: when keep is given with state=query
  type: list
  elements: str
target:
  description: With O(state=query) and O(version), the resolved target and its problems (empty list when usable).
  returned: when version is given with state=query
  type: dict
  sample: {"version": "v0.9.0", "problems": [], "schema_version": 1, "on_disk": true}
entry:
  description: The event appended (or that would be appended in check mode).
  returned: when changed
  type: dict
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chatbot.rollback.plugins.module_utils.releases import (
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    append_entry,
    check_version,
    current_version,
    previous_good,
    prunable,
    read_manifest,
    releases_on_disk,
    utcnow,
    validate_target,
)

STATE_EVENT = {"deployed": "deployed", "rolled_back": "rolled_back", "bad": "marked_bad", "good": "marked_good"}


def _release_info(releases_dir: str, version: str, given: dict | None) -> dict:
    if given:
        return {k: given.get(k) for k in ("git_sha", "schema_version", "built_at")}
    try:
        with open(os.path.join(releases_dir, version, "release.json"), encoding="utf-8") as handle:
            info = json.load(handle)
    except (OSError, ValueError):
        return {}
    return {k: info.get(k) for k in ("git_sha", "schema_version", "built_at")}


def _already(manifest, state: str, version: str, current: str | None, params: dict) -> bool:
    releases = manifest.releases()
    release = releases.get(version)
    history = manifest.deploy_history()
    if state in ("deployed", "rolled_back"):
        return bool(history) and history[-1] == version and current == version
    if state == "bad":
        return release is not None and release.status == "bad"
    if state == "good":
        return release is not None and release.status == "good"
    return False


def _bad_marker(releases_dir: str, entry: dict) -> None:
    path = os.path.join(releases_dir, entry["version"], "BAD_RELEASE")
    if os.path.isdir(os.path.dirname(path)):
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({k: entry.get(k) for k in ("incident_id", "actor", "reason", "at")}, handle, indent=2)
            handle.write("\n")


def _diff_view(manifest, current: str | None, on_disk: set[str]) -> dict:
    """What `--diff` shows: where current points and the status of every release."""
    releases = sorted(manifest.releases(on_disk).values(), key=lambda r: r.version)
    return {"current": current, "releases": {r.version: r.status for r in releases}}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "state": {"type": "str", "default": "query",
                      "choices": ["query", "deployed", "rolled_back", "bad", "good"]},
            "version": {"type": "str"},
            "release_info": {"type": "dict"},
            "incident_id": {"type": "str"},
            "actor": {"type": "str"},
            "reason": {"type": "str"},
            "known_tags": {"type": "list", "elements": "str"},
            "keep": {"type": "int"},
        },
        required_if=[("state", "deployed", ["version"]), ("state", "rolled_back", ["version"]),
                     ("state", "bad", ["version"]), ("state", "good", ["version"])],
        supports_check_mode=True,
    )
    params = module.params
    root = params["root"]
    releases_dir = os.path.join(root, "releases")
    path = os.path.join(releases_dir, MANIFEST_NAME)
    try:
        manifest = read_manifest(path)
    except ManifestError as exc:
        module.fail_json(msg=f"release manifest is unreadable: {exc}")
    on_disk = releases_on_disk(releases_dir)
    current = current_version(root)

    def facts() -> dict:
        releases = manifest.releases(on_disk)
        return {
            "current": current,
            "previous_good": previous_good(manifest, current, on_disk),
            "releases": [r.as_dict() for r in sorted(releases.values(), key=lambda r: r.version)],
        }

    state = params["state"]
    version = params["version"]
    if state == "query":
        result = {"changed": False, **facts()}
        if version:
            known = set(params["known_tags"]) if params["known_tags"] is not None else None
            if version == "previous":
                resolved = result["previous_good"]
                problems = [] if resolved else [
                    f"no previous good release: current is {current}, history "
                    f"{manifest.deploy_history() or 'empty'}"]
            else:
                try:
                    resolved = check_version(version)
                except ManifestError as exc:
                    module.fail_json(msg=str(exc), **result)
                problems = validate_target(manifest, resolved, current, on_disk, known)
            release = manifest.releases(on_disk).get(resolved) if resolved else None
            result["target"] = {
                "version": resolved, "problems": problems, "on_disk": resolved in on_disk,
                "schema_version": release.schema_version if release else None,
                "is_current": resolved == current,
            }
        if params["keep"] is not None:
            protected = {v for v in (current, result.get("target", {}).get("version")) if v}
            result["prunable"] = prunable(manifest, params["keep"], protected, on_disk)
        module.exit_json(**result)

    try:
        check_version(version)
    except ManifestError as exc:
        module.fail_json(msg=str(exc))
    if state in ("deployed", "rolled_back") and current != version and not module.check_mode:
        module.fail_json(msg=f"current points to {current}, not {version}: record a deployment after the switch")
    if _already(manifest, state, version, current if not module.check_mode else version, params):
        module.exit_json(changed=False, **facts())

    before = _diff_view(manifest, current, on_disk)
    entry = {"event": STATE_EVENT[state], "version": version, "at": utcnow()}
    if state in ("deployed", "rolled_back"):
        entry.update(_release_info(releases_dir, version, params["release_info"]))
    for key in ("incident_id", "actor", "reason"):
        if params[key]:
            entry[key] = params[key]
    after = _diff_view(Manifest([*manifest.entries, entry]), current, on_disk)  # as it is now, or would be
    if not module.check_mode:
        os.makedirs(releases_dir, exist_ok=True)
        append_entry(path, entry)
        manifest.entries.append(entry)
        if state == "bad":
            _bad_marker(releases_dir, entry)
        elif state == "good":
            marker = os.path.join(releases_dir, version, "BAD_RELEASE")
            if os.path.exists(marker):
                os.remove(marker)
    diff = {"before": before, "after": after}
    module.exit_json(changed=True, entry=entry, **facts(), **({"diff": diff} if module._diff else {}))


if __name__ == "__main__":
    main()
