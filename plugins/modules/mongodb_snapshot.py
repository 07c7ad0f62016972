#!/usr/bin/python
"""Ansible module: read-only facts of a MongoDB database, optionally compared with a backup manifest."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mongodb_snapshot
short_description: Facts of a MongoDB database (counts, indexes, content hashes), compared with a backup
description:
  - Reads, per collection, the document count, the indexes (normalized), the options and a content hash
    (sha256 over the raw BSON bytes of every document in C(_id) order). Two databases, or a database and
    a backup, with equal facts hold the same data. It works on FerretDB, which has no C(dbHash).
  - C(system.*) collections and views are left out.
  - With O(compare_to), compares those facts with the manifest of a backup made by
    M(chatbot.rollback.mongodb_backup) and returns the differences.
  - Never changes anything; C(changed) is always false.
version_added: "0.1.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
  - chatbot.rollback.mongo_uri
options:
  collections:
    description:
      - Only these collections (default all). Listed collections that do not exist are returned in
        RV(missing) and, with O(compare_to), reported as differences when the manifest has them.
    type: list
    elements: str
  compare_to:
    description:
      - Path of a backup manifest (C(X.manifest.json)) on the managed host to compare with.
      - Collections of the database that the manifest lacks are differences too.
    type: path
  fail_on_difference:
    description: Fail when O(compare_to) is given and the database differs from it.
    type: bool
    default: false
  live_sessions:
    description:
      - With O(compare_to), the sessions policy the database was restored with (see
        M(chatbot.rollback.mongodb_restore)). With V(keep), the sessions created after the backup whose user
        exists in the users collection are left out of the sessions collection's facts, as the restore that kept
        them leaves them out. V(restore) compares every session.
    type: str
    choices: [restore, keep]
    default: restore
  sessions_collection:
    description: The sessions collection (for O(live_sessions=keep)).
    type: str
    default: sessions
  users_collection:
    description: The users collection (for O(live_sessions=keep)).
    type: str
    default: users
attributes:
  check_mode:
    support: full
    details: The module is read-only; it runs the same way in check mode.
  diff_mode:
    support: none
notes:
  - Reads every document of every collection; on a large database this takes a while.
"""

EXAMPLES = r"""
- name: Record the facts of the database before a release
  chatbot.rollback.mongodb_snapshot:
    uri: "{{ chatbot_mongodb_uri }}"
  register: __db_before

- name: Check the database against the backup taken before the release
  chatbot.rollback.mongodb_snapshot:
    uri: "{{ chatbot_mongodb_uri }}"
    compare_to: /var/backups/chatbot/pre-v1.4.0.manifest.json
    fail_on_difference: true
"""

RETURN = r"""
database:
  description: The database of the URI.
  returned: always
  type: str
  sample: chatbot-platform
server_version:
  description: Version reported by the server (FerretDB reports the MongoDB version it emulates).
  returned: always
  type: str
  sample: 7.0.42
collections:
  description: Facts per collection.
  returned: always
  type: dict
  sample:
    users:
      count: 3
      indexes:
        - {"name": "_id_", "key": [["_id", 1]]}
        - {"name": "email_1", "key": [["email", 1]], "unique": true}
      options: {}
      content_sha256: 9a5078d2cefa95982ddf6e216e9de74079e177848cd52b0a3c14d07e28a9e5c4
counts:
  description: Document count per collection.
  returned: always
  type: dict
  sample: {"users": 3, "messages": 120}
missing:
  description: Collections named in O(collections) that do not exist.
  returned: always
  type: list
  elements: str
differences:
  description: Human-readable differences from the manifest (empty when it matches).
  returned: when O(compare_to) is given
  type: list
  elements: str
  sample: ["collection 'users': 4 documents, expected 3"]
matches:
  description: Whether the database matches the manifest.
  returned: when O(compare_to) is given
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_backup import BackupError, load_manifest
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_common import (
    connect,
    database_name,
    mongo_argument_spec,
    scrub,
    server_version,
)
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_sessions import (
    POLICIES,
    SessionPolicy,
    backup_time,
)
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_snapshot import compare, counts, database_facts

try:
    from pymongo.errors import PyMongoError
except ImportError:  # pragma: no cover - connect() fails first with missing_required_lib
    PyMongoError = Exception


def main() -> None:
    argument_spec = mongo_argument_spec()
    argument_spec.update(
        collections={"type": "list", "elements": "str"},
        compare_to={"type": "path"},
        fail_on_difference={"type": "bool", "default": False},
        live_sessions={"type": "str", "default": "restore", "choices": list(POLICIES)},
        sessions_collection={"type": "str", "default": "sessions"},
        users_collection={"type": "str", "default": "users"},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params

    manifest = None
    if params["compare_to"]:
        try:
            manifest = load_manifest(params["compare_to"])
        except BackupError as exc:
            module.fail_json(msg=str(exc))

    client = connect(module)
    name = database_name(params["uri"])
    wanted = params["collections"]
    try:
        db = client.get_database(name)
        exclude = None
        if manifest is not None and params["live_sessions"] == "keep":
            policy = SessionPolicy(backup_time(manifest["created_at"]), sessions=params["sessions_collection"],
                                   users=params["users_collection"])
            exclude = {policy.sessions: policy.exclusion(db)}
        facts = database_facts(db, wanted, exclude=exclude)
        version = server_version(client)
    except PyMongoError as exc:
        module.fail_json(msg=f"reading {name} failed: {scrub(str(exc), params['uri'])}")
    finally:
        client.close()

    result = {
        "changed": False,
        "database": name,
        "server_version": version,
        "collections": facts,
        "counts": counts(facts),
        "missing": sorted(set(wanted or ()) - set(facts)),
    }
    if manifest is not None:
        expected = manifest["collections"]
        if wanted is not None:
            expected = {key: value for key, value in expected.items() if key in set(wanted)}
        result["differences"] = compare(expected, facts)
        result["matches"] = not result["differences"]
        if result["differences"] and params["fail_on_difference"]:
            module.fail_json(msg=f"database {name} differs from {params['compare_to']}: "
                                 + "; ".join(result["differences"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
