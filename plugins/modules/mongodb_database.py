#!/usr/bin/python
"""Ansible module: drop a scratch database (never the one the URI names)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mongodb_database
short_description: Remove a scratch MongoDB database, such as the one a test restore used
description:
  - Drops database O(name) on the server of O(uri) when it exists (O(state=absent)); reports no change when
    it does not.
  - Refuses to drop the database the URI names (the platform's own), whatever O(name) says.
version_added: "0.1.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
  - chatbot.rollback.mongo_uri
options:
  name:
    description: The scratch database.
    type: str
    required: true
  state:
    description: Only V(absent) is supported.
    type: str
    choices: [absent]
    default: absent
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Remove the test-restore database
  chatbot.rollback.mongodb_database:
    uri: "{{ mongodb_uri }}"
    name: chatbot-platform-restore-test
    state: absent
"""

RETURN = r"""
existed:
  description: Whether the database existed before.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chatbot.rollback.plugins.module_utils.mongo_common import (
    connect,
    database_name,
    mongo_argument_spec,
    scrub,
)

try:
    from pymongo.errors import PyMongoError
except ImportError:  # pragma: no cover
    PyMongoError = Exception


def main() -> None:
    argument_spec = mongo_argument_spec()
    argument_spec.update(
        name={"type": "str", "required": True},
        state={"type": "str", "default": "absent", "choices": ["absent"]},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    name = module.params["name"]
    if name == database_name(module.params["uri"]) or name in ("admin", "local", "config"):
        module.fail_json(msg=f"refusing to drop {name!r}: it is the platform's own or a system database")
    client = connect(module)
    try:
        existed = name in client.list_database_names()
        if existed and not module.check_mode:
            client.drop_database(name)
    except PyMongoError as exc:
        module.fail_json(msg=f"dropping {name} failed: {scrub(str(exc), module.params['uri'])}")
    finally:
        client.close()
    module.exit_json(changed=existed, existed=existed)


if __name__ == "__main__":
    main()
