#!/usr/bin/python
"""Ansible module: write an incident's collected logs into its record folder, in one module run."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: incident_logs
short_description: Write collected logs into an incident's folder
description:
  - Writes each log of O(logs) to C(<dest>/<source>.log) (its content and a final newline), creating O(dest);
    a file whose content is already that is left alone, so a second run with the same logs changes nothing.
  - Each file is written whole or not at all (a temporary file in O(dest), then renamed).
  - The content is written as given - redact it first (C(chatbot.rollback.rollback_redact)) and set C(no_log)
    on the task. Runs where the record is - on the control node (C(delegate_to) C(localhost)).
version_added: "0.1.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
options:
  dest:
    description: The folder of this host's logs in the incident record (for example C(incidents/INC-1/logs/app1)).
    type: path
    required: true
  logs:
    description:
      - The logs to write, each a dictionary with C(source) (the name of the log, the file is C(<source>.log);
        letters, digits, C(.), C(_), C(-), not starting with C(.)) and C(content) (its redacted text); other keys are
        ignored, so the RV(chatbot.rollback.log_tail#module:logs) of M(chatbot.rollback.log_tail) can be passed as
        they are.
    type: list
    elements: dict
    required: true
  mode:
    description: Mode of the files written (O(dest) gets C(0750)).
    type: str
    default: "0640"
attributes:
  check_mode:
    support: full
    details: Reports what would be written and writes nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Write the logs, redacted
  chatbot.rollback.incident_logs:
    dest: "{{ incident_logs_dir }}/{{ inventory_hostname }}"
    logs: "{{ tails.logs | selectattr('exists') | chatbot.rollback.rollback_redact }}"
  delegate_to: localhost
  no_log: true
"""

RETURN = r"""
written:
  description: The files written (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: ["incidents/INC-1/logs/app1/pm2-app-err.log"]
"""

import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule

SOURCE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$")


def _same(path: str, data: bytes) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read() == data
    except OSError:
        return False


def _write(path: str, data: bytes, mode: int) -> None:
    folder = os.path.dirname(path)
    fd, partial = tempfile.mkstemp(dir=folder, prefix=".incident-log-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(partial, mode)
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "logs": {"type": "list", "elements": "dict", "required": True},
            "mode": {"type": "str", "default": "0640"},
        },
        supports_check_mode=True,
    )
    params = module.params
    dest = params["dest"]
    try:
        mode = int(params["mode"], 8)
    except ValueError:
        module.fail_json(msg=f"mode must be octal, like 0640 (got {params['mode']!r})")
    incomplete = [n for n, entry in enumerate(params["logs"])
                  if not isinstance(entry.get("source"), str) or not isinstance(entry.get("content"), str)]
    if incomplete:
        module.fail_json(msg=f"every log needs a source and a content (text): not the logs at {incomplete}")
    bad = [entry["source"] for entry in params["logs"] if not SOURCE.match(entry["source"])]
    if bad:
        module.fail_json(msg=f"log names must be letters, digits, '.', '_' or '-' (not first '.'): {bad!r}")
    if os.path.exists(dest) and not os.path.isdir(dest):
        module.fail_json(msg=f"dest {dest} exists and is not a folder")
    planned = []
    for entry in params["logs"]:
        path = os.path.join(dest, entry["source"] + ".log")
        data = (entry["content"] + "\n").encode("utf-8", errors="surrogateescape")
        if not _same(path, data):
            planned.append((path, data))
    changed = bool(planned) or not os.path.isdir(dest)
    if module.check_mode or not changed:
        module.exit_json(changed=changed, written=[path for path, _data in planned])
    try:
        os.makedirs(dest, mode=0o750, exist_ok=True)
        for path, data in planned:
            _write(path, data, mode)
    except OSError as exc:
        module.fail_json(msg=f"cannot write the logs into {dest}: {exc.strerror or exc}")
    module.exit_json(changed=True, written=[path for path, _data in planned])


if __name__ == "__main__":
    main()
