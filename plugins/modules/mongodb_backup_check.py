#!/usr/bin/python
"""Ansible module: read-only integrity check of a backup made by mongodb_backup."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mongodb_backup_check
short_description: Check that a MongoDB backup (archive and manifest) is intact
description:
  - Reads the manifest written by M(chatbot.rollback.mongodb_backup), compares the archive's size and sha256
    with it, then reads the whole archive (each collection's CRC, the gzip checksum) and recomputes every collection's
    document count, indexes and content hash.
  - Fails naming the problem (missing archive, sha256 mismatch for a tampered or corrupt archive,
    truncated archive, count or hash mismatch) unless O(fail_on_problem=false).
  - Needs no database server. Never changes anything.
version_added: "0.1.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
options:
  manifest:
    description: Path of the manifest (C(X.manifest.json)); the archive is the one it names, beside it.
    type: path
    required: true
  fail_on_problem:
    description: Fail when the backup is not intact. With V(false), report the problems and succeed.
    type: bool
    default: true
  content:
    description:
      - With V(true), read the whole archive (CRCs, gzip checksum) and recompute every collection's count,
        indexes and content hash.
      - With V(false), compare only the archive's size and sha256 with the manifest. An archive with the
        manifest's sha256 is byte for byte the one the manifest's facts were computed from when it was written,
        so this is enough right after a backup or before a restore; the full read finds nothing more unless
        the manifest itself was rewritten to match a different archive.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    details: The module is read-only; it runs the same way in check mode.
  diff_mode:
    support: none
requirements:
  - pymongo >= 4 (its bson package) on the managed host
"""

EXAMPLES = r"""
- name: Refuse to go on with a backup that is not intact
  chatbot.rollback.mongodb_backup_check:
    manifest: /var/backups/chatbot/pre-v1.4.0.manifest.json

- name: List the problems of every backup without failing
  chatbot.rollback.mongodb_backup_check:
    manifest: "{{ item }}"
    fail_on_problem: false
  loop: "{{ __manifests.files | map(attribute='path') }}"
  register: __backup_checks
"""

RETURN = r"""
intact:
  description: Whether the backup has no problem.
  returned: always
  type: bool
problems:
  description: The problems found (empty when intact).
  returned: always
  type: list
  elements: str
  sample: ["archive /backups/x.archive.gz has sha256 1f..., the manifest says 9a...: tampered or corrupt"]
archive:
  description: Path of the archive.
  returned: when the manifest is readable
  type: str
database:
  description: The database backed up.
  returned: when the manifest is readable
  type: str
created_at:
  description: When the backup was made (UTC, ISO 8601).
  returned: when the manifest is readable
  type: str
release:
  description: The release recorded in the manifest.
  returned: when the manifest is readable
  type: str
labels:
  description: The labels recorded in the manifest.
  returned: when the manifest is readable
  type: dict
engine:
  description: The engine that made the archive.
  returned: when the manifest is readable
  type: str
sha256:
  description: sha256 of the archive according to the manifest.
  returned: when the manifest is readable
  type: str
size:
  description: Size of the archive according to the manifest.
  returned: when the manifest is readable
  type: int
server_version:
  description: Version of the server the backup was taken from.
  returned: when the manifest is readable
  type: str
collections:
  description: Document count per collection according to the manifest.
  returned: when the manifest is readable
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_archive import BSON_IMPORT_ERROR, HAS_BSON
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_backup import (
    BackupError,
    archive_path,
    check,
    load_manifest,
)

FACT_KEYS = ("database", "created_at", "release", "labels", "engine", "sha256", "size", "server_version",
             "tool_version")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "manifest": {"type": "path", "required": True},
            "fail_on_problem": {"type": "bool", "default": True},
            "content": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    if not HAS_BSON:
        module.fail_json(msg=missing_required_lib("pymongo"), exception=BSON_IMPORT_ERROR)
    path = module.params["manifest"]
    result = {"changed": False, "manifest": path}
    try:
        manifest = load_manifest(path)
    except BackupError:
        manifest = None
    if manifest is not None:
        result["archive"] = archive_path(path, manifest)
        result.update({key: manifest.get(key) for key in FACT_KEYS})
        result["collections"] = {name: fact.get("count")
                                 for name, fact in sorted(manifest["collections"].items())}
    problems = check(path, content=module.params["content"])
    result["problems"] = problems
    result["intact"] = not problems
    if problems and module.params["fail_on_problem"]:
        module.fail_json(msg=f"backup {path} is not intact: " + "; ".join(problems), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
