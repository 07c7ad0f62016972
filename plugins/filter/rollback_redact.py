"""The `rollback_redact` filter: the toolkit's secret redaction (rollbackctl.redact) inside playbooks."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

try:
    from rollbackctl import redact
except ImportError as exc:
    REDACT_IMPORT_ERROR = exc
else:
    REDACT_IMPORT_ERROR = None

DOCUMENTATION = r"""
name: rollback_redact
short_description: Redact secrets (credentials in URIs, tokens, passwords) from text or data
description:
  - Applies the same redaction as the incident record written by rollbackctl.
  - Credentials in URIs become C(********); values of secret-looking keys are replaced; listed values are removed.
requirements:
  - the rollbackctl Python package (it is in the execution environment)
positional: _input
options:
  _input:
    description: Text, list or dictionary to redact.
    type: raw
    required: true
  secrets:
    description: Exact secret values to remove wherever they occur.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Write a log without secrets
  ansible.builtin.copy:
    content: "{{ log_text | chatbot.rollback.rollback_redact }}"
    dest: /tmp/app.log
    mode: "0640"
"""

RETURN = r"""
_value:
  description: The redacted copy of the input.
  type: raw
"""


def rollback_redact(value, secrets=None):
    if REDACT_IMPORT_ERROR is not None:  # never let an unredacted value through
        raise AnsibleFilterError(f"rollback_redact needs the rollbackctl Python package: {REDACT_IMPORT_ERROR}")
    if isinstance(value, str):
        return redact.redact_text(value, secrets or ())
    return redact.redact(value, secrets or ())


class FilterModule:
    def filters(self):
        return {"rollback_redact": rollback_redact}
