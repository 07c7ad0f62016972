#!/usr/bin/python
"""Ansible module: read-only health facts of a MongoDB database."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mongodb_health
short_description: Connectivity, latency, replication lag and a schema field of a MongoDB database
description:
  - Connects with the URI (the login is checked), measures the round trip of C(ping), reads the server version
    and, on a replica set, the replication lag of each secondary behind the primary (C(replSetGetStatus)).
    Servers without replication (standalone MongoDB, FerretDB) report C(replication.applicable=false).
  - Optionally reads one field of one document, for example the platform's schema version stored in
    collection C(meta), document C(schema).
  - Read-only; never reports a change. With O(fail_when_unreachable=false) an unreachable server is reported
    in RV(reachable) and RV(error) instead of failing, so that verification can record it as a failed check.
version_added: "0.1.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
  - chatbot.rollback.mongo_uri
options:
  document:
    description: A document field to read, given as C(collection), C(id) and C(field) (dotted path allowed).
    type: dict
  fail_when_unreachable:
    description: Fail when the server cannot be reached or refuses the login.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Read the platform's schema version
  chatbot.rollback.mongodb_health:
    uri: "{{ mongodb_uri }}"
    document: {collection: meta, id: schema, field: version}
  register: db

- name: Check connectivity without failing
  chatbot.rollback.mongodb_health:
    uri: "{{ mongodb_uri }}"
    fail_when_unreachable: false
"""

RETURN = r"""
reachable:
  description: Whether the server answered and accepted the login.
  returned: always
  type: bool
error:
  description: Why it is not reachable (host and port only, never the password).
  returned: when not reachable
  type: str
ping_ms:
  description: Round trip of one C(ping), in milliseconds.
  returned: when reachable
  type: float
server_version:
  description: Server version (FerretDB reports the MongoDB version it emulates).
  returned: when reachable
  type: str
replication:
  description: C(applicable), C(set) name, C(max_lag_s) and per-member lag in seconds when a replica set.
  returned: when reachable
  type: dict
  sample: {"applicable": false}
value:
  description: The value of O(document) (null when the document or field is missing).
  returned: when document is given and reachable
  type: raw
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_common import (
    MongoConnectionError,
    connect,
    database_name,
    mongo_argument_spec,
    scrub,
    server_version,
)

try:
    from pymongo.errors import OperationFailure, PyMongoError
except ImportError:  # pragma: no cover - connect() reports missing pymongo first
    OperationFailure = PyMongoError = Exception


def replication(client) -> dict:
    try:
        status = client.admin.command("replSetGetStatus")
    except OperationFailure:
        return {"applicable": False}
    members = status.get("members", [])
    primary = next((m for m in members if m.get("stateStr") == "PRIMARY"), None)
    if primary is None:
        return {"applicable": True, "set": status.get("set"), "max_lag_s": None, "members": {},
                "note": "no primary"}
    lags = {m["name"]: (primary["optimeDate"] - m["optimeDate"]).total_seconds()
            for m in members if m.get("stateStr") == "SECONDARY"}
    return {"applicable": True, "set": status.get("set"), "members": lags,
            "max_lag_s": max(lags.values()) if lags else 0.0}


def field(document: dict | None, path: str):
    value = document
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def main() -> None:
    argument_spec = mongo_argument_spec()
    argument_spec.update(
        document={"type": "dict"},
        fail_when_unreachable={"type": "bool", "default": True},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if params["document"] and not {"collection", "id", "field"} <= set(params["document"]):
        module.fail_json(msg="document needs collection, id and field")
    if params["fail_when_unreachable"]:
        client = connect(module)
    else:
        try:
            client = connect(dict(params))
        except (MongoConnectionError, ImportError) as exc:
            module.exit_json(changed=False, reachable=False, error=str(exc))
    try:
        start = time.perf_counter()
        client.admin.command("ping")
        ping_ms = round((time.perf_counter() - start) * 1000, 2)
        result = {"changed": False, "reachable": True, "ping_ms": ping_ms,
                  "server_version": server_version(client), "replication": replication(client)}
        if params["document"]:
            spec = params["document"]
            doc = client.get_database(database_name(params["uri"]))[spec["collection"]].find_one({"_id": spec["id"]})
            result["value"] = field(doc, spec["field"])
    except PyMongoError as exc:
        module.fail_json(msg=f"reading from MongoDB failed: {scrub(str(exc), params['uri'])}")
    finally:
        client.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
