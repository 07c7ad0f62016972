#!/usr/bin/python
"""Ansible module: scan application logs for error lines written since a point in time."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: log_scan
short_description: Look for error lines written to log files since a point in time
description:
  - Reads the tail (O(max_bytes)) of each log file and counts the lines written since O(since) that contain
    one of O(patterns). Returns one verification check C({name, scope, value, threshold, unit, verdict, detail})
    (value - the number of error lines, threshold 0) and up to 5 sample lines.
  - The time of a line is its pm2 prefix (with the pm2 option C(time) on, pm2 writes C(YYYY-MM-DDTHH:MM:SS:) and a
    space in the host's local time); lines without a prefix (the rest of a stack trace) belong to the last
    prefixed line before them.
    Lines at the start of the tail, before its first prefix, belong to an entry whose prefix was cut off and
    are not counted. A file without any prefix is scanned whole when it was modified since O(since).
  - Sample lines are redacted - passwords in URIs (C(scheme://user:***@host)), bearer tokens and
    C(token=)/C(password=)-like values are replaced by C(***).
  - A missing file makes the check fail (with a detail naming it), or be skipped with O(missing_ok=true).
  - Read-only; never reports a change.
version_added: "0.1.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
options:
  paths:
    description: Log files to scan.
    type: list
    elements: path
    required: true
  since:
    description:
      - Only lines written at or after this time count, ISO 8601 (for example C(2026-01-31T12:00:00Z));
        without a zone it is UTC. Default - O(lookback_s) seconds ago.
    type: str
  attributed_before:
    description:
      - Error lines written before this time (ISO 8601, as O(since)) are reported in the detail and RV(attributed)
        but not counted against the release - the end of the release switch or of the database restore, so that
        the old release's draining workers and the restore window are not blamed on the target.
    type: str
  lookback_s:
    description: When O(since) is not given, how many seconds back to look.
    type: int
    default: 600
  patterns:
    description: Substrings that make a line an error line (case-sensitive).
    type: list
    elements: str
    default: ["Error:", "TypeError", "ReferenceError", "ECONNREFUSED", "Unhandled", '"level":"error"', "FATAL"]
  max_bytes:
    description: How much of the end of each file is read, in bytes.
    type: int
    default: 1048576
  missing_ok:
    description: A missing file is skipped instead of failing the check.
    type: bool
    default: false
  prefix_timezone:
    description: Time zone of the pm2 prefixes that carry none - C(local) (the host's, as pm2 writes them) or C(utc).
    type: str
    choices: [local, utc]
    default: local
  name:
    description: Name of the check returned.
    type: str
    default: app_log_errors
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same way in check mode.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Look for startup errors since the release switch
  chatbot.rollback.log_scan:
    paths:
      - /opt/chatbot-platform/shared/logs/app-err.log
      - /opt/chatbot-platform/shared/logs/app-out.log
    since: "2026-01-31T12:00:00Z"
  register: logs

- name: Look at the last ten minutes, tolerating a log not written yet
  chatbot.rollback.log_scan:
    paths: [/var/log/chatbot/worker.log]
    missing_ok: true
"""

RETURN = r"""
check:
  description: The verification check; value is the number of error lines, threshold 0.
  returned: always
  type: dict
  sample: {"name": "app_log_errors", "scope": "app", "value": 0, "threshold": 0, "unit": "lines",
           "verdict": "pass", "detail": "0 error lines since 2026-01-31T12:00:00Z in app-err.log: 0, app-out.log: 0"}
samples:
  description: Up to 5 error lines, redacted and shortened to 300 characters.
  returned: always
  type: list
  elements: str
files:
  description: Per file - path, exists, matches, scanned (lines written since O(since)), timestamped, cut, modified_at.
  returned: always
  type: list
  elements: dict
attributed:
  description: Error lines written before O(attributed_before), reported and not counted.
  returned: always
  type: int
  sample: 0
since:
  description: The time lines were counted from (UTC).
  returned: always
  type: str
  sample: "2026-01-31T12:00:00Z"
"""

import datetime

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chatbot.rollback.plugins.module_utils.log_scan import (
    DEFAULT_MAX_BYTES,
    DEFAULT_PATTERNS,
    UTC,
    parse_since,
    scan,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "path", "required": True},
            "since": {"type": "str"},
            "attributed_before": {"type": "str"},
            "lookback_s": {"type": "int", "default": 600},
            "patterns": {"type": "list", "elements": "str", "default": list(DEFAULT_PATTERNS)},
            "max_bytes": {"type": "int", "default": DEFAULT_MAX_BYTES},
            "missing_ok": {"type": "bool", "default": False},
            "prefix_timezone": {"type": "str", "choices": ["local", "utc"], "default": "local"},
            "name": {"type": "str", "default": "app_log_errors"},
        },
        supports_check_mode=True,
    )
    params = module.params
    if params["max_bytes"] < 1 or params["lookback_s"] < 0:
        module.fail_json(msg="max_bytes must be positive and lookback_s not negative")
    if params["since"]:
        try:
            since = parse_since(params["since"])
        except ValueError as exc:
            module.fail_json(msg=str(exc))
    else:
        since = datetime.datetime.now(UTC) - datetime.timedelta(seconds=params["lookback_s"])
    attributed_before = None
    if params["attributed_before"]:
        try:
            attributed_before = parse_since(params["attributed_before"])
        except ValueError as exc:
            module.fail_json(msg=f"attributed_before: {exc}")
    result = scan(params["paths"], since, params["patterns"], params["max_bytes"], params["missing_ok"],
                  UTC if params["prefix_timezone"] == "utc" else None, params["name"],
                  attributed_before=attributed_before)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
