#!/usr/bin/python
"""Ansible module: the last lines of several log files, in one module run."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: log_tail
short_description: Read the last lines of several log files at once
description:
  - Returns the last O(lines) lines of each file of O(files) (within the last O(max_bytes) bytes of it), in one
    module run - what C(tail -n) per file did, without a process per file.
  - A missing file is reported (C(exists=false)), never an error; an unreadable one fails the module naming it.
  - The content is returned as it is in the file - log lines may hold secrets, so the task that calls this
    module should set C(no_log) and redact before writing anything (C(chatbot.rollback.rollback_redact)).
  - Read-only; never reports a change.
version_added: "0.1.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
options:
  files:
    description: The log files, each with the name it is collected under.
    type: list
    elements: dict
    required: true
    suboptions:
      source:
        description: Name of the log (for example C(pm2-app-err)).
        type: str
        required: true
      path:
        description: Path of the log file.
        type: path
        required: true
  lines:
    description: How many lines of the end of each file.
    type: int
    default: 2000
  max_bytes:
    description: At most this many bytes of the end of each file are read.
    type: int
    default: 4194304
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same way in check mode.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Read the end of the app's logs
  chatbot.rollback.log_tail:
    files:
      - {source: pm2-app-err, path: /opt/chatbot-platform/shared/logs/app-err.log}
      - {source: nginx-error, path: /var/log/nginx/error.log}
    lines: 2000
  register: tails
  no_log: true
"""

RETURN = r"""
logs:
  description: One entry per file of O(files), in order.
  returned: always
  type: list
  elements: dict
  sample:
    - {"source": "pm2-app-err", "path": "/opt/chatbot-platform/shared/logs/app-err.log", "exists": true,
       "lines": 2, "content": "first line\nsecond line"}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chatbot.rollback.plugins.module_utils.log_scan import read_tail


def tail(path: str, lines: int, max_bytes: int) -> dict:
    """The last `lines` lines of `path` (within its last `max_bytes`); exists false for a missing file."""
    if not os.path.exists(path):
        return {"path": path, "exists": False, "lines": 0, "content": ""}
    found, _cut = read_tail(path, max_bytes)
    kept = found[-lines:] if lines > 0 else []
    return {"path": path, "exists": True, "lines": len(kept), "content": "\n".join(kept)}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "list", "elements": "dict", "required": True,
                      "options": {"source": {"type": "str", "required": True},
                                  "path": {"type": "path", "required": True}}},
            "lines": {"type": "int", "default": 2000},
            "max_bytes": {"type": "int", "default": 4 * 1024 * 1024},
        },
        supports_check_mode=True,
    )
    params = module.params
    if params["lines"] < 0 or params["max_bytes"] < 1:
        module.fail_json(msg="lines must be 0 or more and max_bytes 1 or more")
    logs = []
    for entry in params["files"]:
        try:
            logs.append({"source": entry["source"], **tail(entry["path"], params["lines"], params["max_bytes"])})
        except OSError as exc:
            module.fail_json(msg=f"cannot read the log {entry['source']} at {entry['path']}: {exc.strerror or exc}")
    module.exit_json(changed=False, logs=logs)


if __name__ == "__main__":
    main()
