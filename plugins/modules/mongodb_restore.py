#!/usr/bin/python
"""Ansible module: restore a MongoDB database from a backup made by mongodb_backup, idempotently."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mongodb_restore
short_description: Restore a MongoDB database from a checked backup, only where it differs
description:
  - Before touching anything, checks the backup's size and sha256 against its manifest and refuses to restore one
    that is not intact (missing, truncated, tampered with). An archive with the manifest's sha256 is the one the
    manifest's counts and hashes were computed from, so its documents are read once, while restoring (their CRCs
    are checked as they are read).
  - Compares the target database with the manifest (counts, indexes, options, content hashes). Each
    collection that differs or is missing is dropped and restored from the archive (options, documents,
    indexes); collections that match are left alone. With O(drop_extra_collections=true), collections
    the backup does not have (for example created by a bad release) are dropped; note that
    C(mongorestore --drop) alone leaves them.
  - When the target already matches, nothing is done and C(changed) is false.
  - With O(verify=true), the target is compared with the manifest again afterwards and the module fails
    if anything still differs.
version_added: "0.1.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
  - chatbot.rollback.mongo_uri
options:
  manifest:
    description: Path of the backup's manifest (C(X.manifest.json)); the archive is the one it names.
    type: path
    required: true
  target_database:
    description: Database to restore into. Defaults to the database of O(uri).
    type: str
  drop_extra_collections:
    description: Drop the target's collections (except C(system.*)) that are not in the backup.
    type: bool
    default: true
  engine:
    description:
      - V(pymongo) restores with pymongo (no MongoDB tools needed).
      - V(mongorestore) runs C(mongorestore --drop) from PATH for the documents; the indexes are then
        created with pymongo (mongorestore adds C(ns) to index specs, which FerretDB rejects).
      - V(auto) uses C(mongorestore) when it is on PATH, else V(pymongo).
    type: str
    choices: [auto, pymongo, mongorestore]
    default: auto
  verify:
    description: Compare the target with the manifest after restoring and fail on any difference.
    type: bool
    default: true
  verify_method:
    description:
      - How O(verify) compares the target with the manifest after restoring.
      - V(stream) does not read the restored documents back. Each restored collection's documents are hashed
        as they are read from the archive and inserted (every insert acknowledged by the server), and must give
        the manifest's content hash; the server's document count (collStats), indexes and options must be the
        manifest's. Collections not restored keep the facts compared before. With the V(mongorestore) engine,
        and for the sessions collection under O(live_sessions=keep), the collection is read back.
      - V(read_back) reads the whole target back and compares counts, indexes and content hashes, as a later
        verification (C(mongodb_snapshot) with C(compare_to)) does.
    type: str
    choices: [stream, read_back]
    default: stream
  current_manifest:
    description:
      - Manifest of a dump of the target database taken just before, with the writers stopped (the
        pre-restore snapshot). Its facts stand for the target's current state, so the target is not read a
        second time to decide what to restore. The comparison after the restore (O(verify)) still reads it.
      - It must describe the target as it is now; a dump from before an interrupted restore does not.
      - When not given, the target is read and compared with the backup.
    type: path
  live_sessions:
    description:
      - What happens to the login sessions created after the backup when the sessions collection is restored.
      - V(restore) puts back exactly the backup's sessions (everyone who logged in after the backup is logged out).
      - V(keep) keeps those that are not expired and whose user exists in the restored users collection
        with the same credentials (O(credential_fields)); the sessions of users the backup does not have, or
        whose credentials differ in the backup, are dropped. Such sessions are left out of every comparison
        with the backup, so a second run changes nothing.
    type: str
    choices: [restore, keep]
    default: restore
  sessions_collection:
    description: The sessions collection (documents C({token_hash, user_id, created_at, expires_at})).
    type: str
    default: sessions
  users_collection:
    description: The users collection (C(user_id) of a session is a user's C(_id)).
    type: str
    default: users
  credential_fields:
    description: Fields of a user that must be equal before and after the restore for its sessions to be kept.
    type: list
    elements: str
    default: [password]
attributes:
  check_mode:
    support: full
    details: Checks the backup, compares, and returns RV(would_restore) and RV(would_drop); changes nothing.
  diff_mode:
    support: full
    details: Shows the document count of every collection before and after (the backup's counts in check mode).
notes:
  - Stop the writers (the application) first; documents written during the restore are lost or mixed in.
"""

EXAMPLES = r"""
- name: Roll the database back to the backup taken before the release
  chatbot.rollback.mongodb_restore:
    uri: "{{ chatbot_mongodb_uri }}"
    manifest: /var/backups/chatbot/pre-v1.4.0.manifest.json

- name: Restore a copy next to the live database, for inspection
  chatbot.rollback.mongodb_restore:
    uri: "{{ chatbot_mongodb_uri }}"
    manifest: /var/backups/chatbot/pre-v1.4.0.manifest.json
    target_database: chatbot-platform-restored
    engine: pymongo
"""

RETURN = r"""
database:
  description: The target database.
  returned: always
  type: str
would_restore:
  description: Collections that differ from the backup (restored unless in check mode).
  returned: always
  type: list
  elements: str
would_drop:
  description: Collections not in the backup that are (or would be) dropped.
  returned: always
  type: list
  elements: str
differences:
  description: How the target differed from the backup before the restore.
  returned: always
  type: list
  elements: str
restored:
  description: Document count restored per collection.
  returned: when changed and not in check mode
  type: dict
dropped:
  description: Collections dropped because the backup does not have them.
  returned: when changed and not in check mode
  type: list
  elements: str
engine:
  description: The engine that restored (or would restore).
  returned: always
  type: str
before:
  description: Document count per collection before the restore.
  returned: always
  type: dict
  sample: {"users": 4, "messages": 130, "experiments": 2}
after:
  description: Document count per collection after the restore (equal to RV(before) in check mode).
  returned: always
  type: dict
  sample: {"users": 3, "messages": 120}
verify_differences:
  description: Differences left after the restore (empty on success).
  returned: when O(verify=true) and not in check mode and changed
  type: list
  elements: str
sessions:
  description: With O(live_sessions=keep), the sessions created after the backup that were kept and dropped.
  returned: when O(live_sessions=keep) and the sessions collection was restored
  type: dict
  sample: {"policy": "keep", "kept": 12, "dropped": 1}
backup_sha256:
  description: sha256 of the backup's archive (checked).
  returned: always
  type: str
backup_created_at:
  description: When the backup was made (UTC, ISO 8601), from its manifest.
  returned: always
  type: str
backup_release:
  description: The release recorded in the backup's manifest.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_backup import (
    RESTORE_ENGINES,
    BackupError,
    archive_path,
    check,
    load_manifest,
    resolve_engine,
    restore,
)
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_common import (
    connect,
    database_name,
    mongo_argument_spec,
    scrub,
)
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_sessions import (
    POLICIES,
    SessionPolicy,
    backup_time,
)
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_snapshot import (
    compare,
    counts,
    database_facts,
    differing_collections,
    restored_facts,
)

try:
    from pymongo.errors import PyMongoError
except ImportError:  # pragma: no cover - connect() fails first with missing_required_lib
    PyMongoError = Exception


def _count_only(db) -> dict:
    return {name: db.get_collection(name).count_documents({})
            for name in sorted(db.list_collection_names()) if not name.startswith("system.")}


def _diff(database: str, before: dict, after: dict) -> dict:
    """Document counts per collection (a collection the restore drops is absent after)."""
    return {"before": {"database": database, "collections": before},
            "after": {"database": database, "collections": after}}


def _policy(params: dict, manifest: dict):
    if params["live_sessions"] != "keep":
        return None
    return SessionPolicy(backup_time(manifest["created_at"]), sessions=params["sessions_collection"],
                         users=params["users_collection"], credential_fields=params["credential_fields"])


def _current_facts(module, db, target: str, policy) -> dict:
    """The target's facts: from O(current_manifest) when given (sessions recomputed under the keep policy)."""
    exclude = {policy.sessions: policy.exclusion(db)} if policy else None
    path = module.params["current_manifest"]
    if not path:
        return database_facts(db, exclude=exclude)
    try:
        current = load_manifest(path)
    except BackupError as exc:
        module.fail_json(msg=f"current_manifest: {exc}")
    if current["database"] != target:
        module.fail_json(msg=f"current_manifest {path} describes database {current['database']!r}, not {target!r}")
    facts = dict(current["collections"])
    if policy and policy.sessions in facts:
        facts.update(database_facts(db, [policy.sessions], exclude=exclude))
    return facts


def main() -> None:
    argument_spec = mongo_argument_spec()
    argument_spec.update(
        manifest={"type": "path", "required": True},
        target_database={"type": "str"},
        drop_extra_collections={"type": "bool", "default": True},
        engine={"type": "str", "default": "auto", "choices": list(RESTORE_ENGINES)},
        verify={"type": "bool", "default": True},
        verify_method={"type": "str", "default": "stream", "choices": ["stream", "read_back"]},
        current_manifest={"type": "path"},
        live_sessions={"type": "str", "default": "restore", "choices": list(POLICIES)},
        sessions_collection={"type": "str", "default": "sessions"},
        users_collection={"type": "str", "default": "users"},
        credential_fields={"type": "list", "elements": "str", "default": ["password"], "no_log": False},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    uri = params["uri"]
    path = params["manifest"]
    problems = check(path, content=False)
    if problems:
        module.fail_json(msg=f"refusing to restore: backup {path} is not intact: " + "; ".join(problems),
                         problems=problems)
    manifest = load_manifest(path)
    archive = archive_path(path, manifest)
    try:
        target = params["target_database"] or database_name(uri)
        engine, _tool = resolve_engine(params["engine"], "mongorestore")
        policy = _policy(params, manifest)
    except (ValueError, BackupError) as exc:
        module.fail_json(msg=scrub(str(exc), uri))
    drop_extra = params["drop_extra_collections"]
    expected = manifest["collections"]
    client = connect(module)
    result = {"changed": False, "database": target, "engine": engine, "backup_sha256": manifest["sha256"],
              "backup_created_at": manifest["created_at"], "backup_release": manifest.get("release")}
    try:
        db = client.get_database(target)
        before = _current_facts(module, db, target, policy)
        result["before"] = counts(before)
        result["differences"] = compare(expected, before, ignore_extra=not drop_extra)
        restore_names = differing_collections(expected, before)
        if policy and policy.sessions in expected and {policy.users, policy.sessions} & set(restore_names):
            # The kept sessions depend on the restored users: judge them again whenever either is restored.
            restore_names = sorted({*restore_names, policy.sessions})
        result["would_restore"] = restore_names
        result["would_drop"] = sorted(set(before) - set(expected)) if drop_extra else []
        result["changed"] = bool(result["would_restore"] or result["would_drop"])
        if not result["changed"] or module.check_mode:
            result["after"] = result["before"]
            if module._diff:
                result["diff"] = _diff(target, result["before"], counts(expected) if result["changed"]
                                       else result["before"])
            module.exit_json(**result)
        candidates = policy.candidates(db) if policy and policy.sessions in restore_names else None
        done = restore(uri, archive, target, drop_extra, engine, client=client, collections=restore_names)
        result["restored"] = done["restored"]
        result["dropped"] = done["dropped"]
        if candidates is not None:
            result["sessions"] = {"policy": "keep", **policy.merge(db, *candidates)}
        if params["verify"]:
            exclude = {policy.sessions: policy.exclusion(db)} if policy else None
            if params["verify_method"] == "stream":
                untouched = {name: fact for name, fact in before.items() if name not in done["restored"]}
                after = restored_facts(db, done.get("streamed", {}), untouched, exclude)
            else:
                after = database_facts(db, exclude=exclude)
            result["after"] = counts(after)
            result["verify_differences"] = compare(expected, after, ignore_extra=not drop_extra)
            if result["verify_differences"]:
                module.fail_json(msg=f"restored {target} from {archive} but it still differs from the "
                                     "backup: " + "; ".join(result["verify_differences"]), **result)
        else:
            result["after"] = _count_only(db)
    except BackupError as exc:
        module.fail_json(msg=f"restore of {target} failed: {exc}", **result)
    except PyMongoError as exc:
        module.fail_json(msg=f"restore of {target} failed: {scrub(str(exc), uri)}", **result)
    finally:
        client.close()
    if module._diff:
        result["diff"] = _diff(target, result["before"], result["after"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
