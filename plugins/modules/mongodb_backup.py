#!/usr/bin/python
"""Ansible module: back a MongoDB database up to a mongodump archive with a checked manifest."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mongodb_backup
short_description: Back a MongoDB database up to a gzipped mongodump archive and a manifest
description:
  - Dumps the database of O(uri) to O(dest), in the format of C(mongodump --archive --gzip), then reads
    the archive back and writes its manifest beside it (C(X.archive.gz) gets C(X.manifest.json)) with
    the sha256 and size of the archive, and per collection the document count, indexes, options and
    content hash.
  - Both files are mode 0600 and appear atomically; a failed dump leaves no archive behind.
  - Idempotent - when O(dest) and its manifest exist and the backup is intact (see
    M(chatbot.rollback.mongodb_backup_check)), nothing is done unless O(force=true).
  - An existing backup at O(dest) that is not intact (tampered, truncated, manifest missing) is left
    alone for inspection and the module fails, unless O(force=true).
  - The archive restores with M(chatbot.rollback.mongodb_restore) or with C(mongorestore --archive=X.archive.gz --gzip),
    whichever engine made it.
version_added: "0.1.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
  - chatbot.rollback.mongo_uri
options:
  dest:
    description:
      - Path of the archive to write, normally ending in C(.archive.gz). Its directory must exist.
    type: path
    required: true
  engine:
    description:
      - V(pymongo) writes the archive with pymongo (no MongoDB tools needed).
      - V(mongodump) runs C(mongodump) from PATH (fails when it is not there).
      - V(auto) uses C(mongodump) when it is on PATH, else V(pymongo).
    type: str
    choices: [auto, pymongo, mongodump]
    default: auto
  release:
    description: The release the backup belongs to (recorded in the manifest), for example C(v1.4.0).
    type: str
  labels:
    description: Free-form labels recorded in the manifest (who, why, ticket...).
    type: dict
    default: {}
  supersede:
    description:
      - When O(dest) holds an intact backup of the same database whose content differs from the database
        now (counts, indexes, content hashes), move it aside as C(NAME.superseded-<its created_at>) and
        dump anew; when the content is equal, nothing is done.
      - For a pre-deployment backup taken again before the same release is deployed a second time
        after a rollback. The new backup must hold the data of now; the earlier one is kept.
    type: bool
    default: false
  force:
    description:
      - Dump again even when O(dest) already holds an intact backup, and replace a backup there that
        is not intact.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Connects and reports what would be written; writes nothing.
  diff_mode:
    support: full
    details: "Shows the backup at O(dest) before and after: release, creation time, sha256, document counts."
notes:
  - With the V(mongodump) engine the URI reaches mongodump through a C(--config) file (mode 0600,
    deleted afterwards), never on its command line.
  - FerretDB v1 rejects the index specs plain C(mongorestore) sends (it adds C(ns)); there, restore
    with M(chatbot.rollback.mongodb_restore) or add C(--noIndexRestore) and create the indexes from the manifest.
"""

EXAMPLES = r"""
- name: Back the database up before switching to the new release
  chatbot.rollback.mongodb_backup:
    uri: "{{ chatbot_mongodb_uri }}"
    dest: /var/backups/chatbot/pre-v1.4.0.archive.gz
    release: v1.4.0
    labels:
      reason: pre-deploy
  register: __backup

- name: Take a fresh backup even if one exists at that path
  chatbot.rollback.mongodb_backup:
    uri: "{{ chatbot_mongodb_uri }}"
    dest: /var/backups/chatbot/manual.archive.gz
    engine: pymongo
    force: true
"""

RETURN = r"""
archive:
  description: Path of the archive.
  returned: always
  type: str
  sample: /var/backups/chatbot/pre-v1.4.0.archive.gz
manifest:
  description: Path of the manifest.
  returned: always
  type: str
  sample: /var/backups/chatbot/pre-v1.4.0.manifest.json
sha256:
  description: sha256 of the archive (of the existing one when nothing was done; absent in check mode).
  returned: when a backup exists or was written
  type: str
size:
  description: Size of the archive in bytes.
  returned: when a backup exists or was written
  type: int
engine:
  description: The engine that made the archive (V(pymongo) or V(mongodump)), or would make it in check mode.
  returned: always
  type: str
collections:
  description: Document count per collection in the backup (in check mode, in the database now).
  returned: always
  type: dict
  sample: {"users": 3, "messages": 120}
created_at:
  description: When the backup was made (UTC, ISO 8601).
  returned: when a backup exists or was written
  type: str
superseded:
  description: Where the earlier backup was moved (O(supersede) and it differed from the database).
  returned: when a backup was superseded
  type: dict
  sample: {"archive": "/var/backups/chatbot/pre-deploy-v1.0.0.superseded-2026-11-28T162820Z.archive.gz",
           "manifest": "/var/backups/chatbot/pre-deploy-v1.0.0.superseded-2026-11-28T162820Z.manifest.json"}
msg:
  description: What was done.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_backup import (
    BACKUP_ENGINES,
    BackupError,
    check,
    dump,
    load_manifest,
    manifest_path_for,
    resolve_engine,
    supersede,
)
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_common import (
    connect,
    database_name,
    mongo_argument_spec,
    scrub,
)
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_snapshot import compare, database_facts

try:
    from pymongo.errors import PyMongoError
except ImportError:  # pragma: no cover - connect() fails first with missing_required_lib
    PyMongoError = Exception


def _facts(dest: str, manifest_path: str, manifest: dict) -> dict:
    return {
        "archive": dest,
        "manifest": manifest_path,
        "sha256": manifest["sha256"],
        "size": manifest["size"],
        "engine": manifest["engine"],
        "created_at": manifest["created_at"],
        "release": manifest.get("release"),
        "collections": {name: fact["count"] for name, fact in sorted(manifest["collections"].items())},
    }


def _diff_view(dest: str, facts: dict | None) -> dict:
    """What `--diff` shows of the backup at dest: none, or its release, creation time and counts."""
    if not facts:
        return {"backup": dest, "exists": False}
    shown = ("release", "created_at", "sha256", "collections")
    return {"backup": dest, "exists": True, **{key: facts.get(key) for key in shown}}


def _supersede_if_stale(module, database: str, manifest_path: str, manifest: dict) -> str | None:
    """A description of the differences when the database no longer equals the backup, else None."""
    client = connect(module)
    try:
        facts = database_facts(client.get_database(database))
    except PyMongoError as exc:
        module.fail_json(msg=f"reading {database} failed: {scrub(str(exc), module.params['uri'])}")
    finally:
        client.close()
    differences = compare(manifest["collections"], facts)
    return "; ".join(differences[:3]) if differences else None


def main() -> None:
    argument_spec = mongo_argument_spec()
    argument_spec.update(
        dest={"type": "path", "required": True},
        engine={"type": "str", "default": "auto", "choices": list(BACKUP_ENGINES)},
        release={"type": "str"},
        labels={"type": "dict", "default": {}},
        force={"type": "bool", "default": False},
        supersede={"type": "bool", "default": False},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    dest = os.path.abspath(params["dest"])
    manifest_path = manifest_path_for(dest)
    try:
        database = database_name(params["uri"])
    except ValueError as exc:
        module.fail_json(msg=scrub(str(exc), params["uri"]))

    superseded_paths = None
    existing = None
    if not params["force"] and (os.path.exists(dest) or os.path.exists(manifest_path)):
        problems = check(manifest_path, content=False)  # its sha256 vouches for the documents
        if problems:
            module.fail_json(msg=f"{dest} exists but is not an intact backup: {'; '.join(problems)}; "
                                 "left as it is (set force=true to replace it)", problems=problems)
        manifest = load_manifest(manifest_path)
        if manifest["database"] != database:
            module.fail_json(msg=f"{dest} holds a backup of database {manifest['database']!r}, not "
                                 f"{database!r}; choose another dest or set force=true")
        superseded = _supersede_if_stale(module, database, manifest_path, manifest) if params["supersede"] else None
        existing = _facts(dest, manifest_path, manifest)
        if superseded is None:
            module.exit_json(changed=False, msg=f"{dest} already holds an intact backup", **existing)
        if module.check_mode:
            diff = {"before": _diff_view(dest, existing),
                    "after": {"backup": dest, "exists": True, "release": params["release"],
                              "created_at": "(now)", "superseded": f"the earlier backup, kept aside: {superseded}"}}
            module.exit_json(changed=True, msg=f"would move {dest} aside ({superseded}) and back {database} up again",
                             archive=dest, manifest=manifest_path, **({"diff": diff} if module._diff else {}))

        if not module.check_mode:
            try:
                superseded_paths = supersede(manifest_path, manifest)
            except (BackupError, OSError) as exc:
                module.fail_json(msg=f"could not move the earlier backup aside: {exc}")

    if not os.path.isdir(os.path.dirname(dest)):
        module.fail_json(msg=f"directory {os.path.dirname(dest)} does not exist")
    try:
        engine, _tool = resolve_engine(params["engine"], "mongodump")
    except BackupError as exc:
        module.fail_json(msg=str(exc))

    client = connect(module)
    try:
        if module.check_mode:
            db = client.get_database(database)
            names = sorted(n for n in db.list_collection_names() if not n.startswith("system."))
            collections = {n: db.get_collection(n).estimated_document_count() for n in names}
            diff = {"before": _diff_view(dest, existing),
                    "after": {"backup": dest, "exists": True, "release": params["release"], "created_at": "(now)",
                              "collections": collections}}
            module.exit_json(changed=True, msg=f"would back {database} up to {dest}", archive=dest,
                             manifest=manifest_path, engine=engine, collections=collections,
                             **({"diff": diff} if module._diff else {}))
        manifest = dump(params["uri"], dest, engine, client=client, release=params["release"],
                        labels=params["labels"])
    except (BackupError, PyMongoError) as exc:
        module.fail_json(msg=f"backup of {database} failed: {scrub(str(exc), params['uri'])}")
    except OSError as exc:  # a full disk, a read-only or vanished directory: nothing half-written is left
        module.fail_json(msg=f"backup of {database} to {dest} failed: {exc.strerror or exc}"
                             f"{f' ({exc.filename})' if exc.filename else ''}; nothing was kept at {dest}")
    finally:
        client.close()
    result = _facts(dest, manifest_path, manifest)
    if params["supersede"] and superseded_paths:
        result["superseded"] = superseded_paths
    if module._diff:
        result["diff"] = {"before": _diff_view(dest, existing), "after": _diff_view(dest, result)}
    module.exit_json(changed=True, msg=f"backed {database} up to {dest} with {manifest['engine']}", **result)


if __name__ == "__main__":
    main()
