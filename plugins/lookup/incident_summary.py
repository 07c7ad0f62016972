"""Read the summary of an incident record that the rollback_record callback wrote (rollback.yml's last play)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: incident_summary
short_description: The summary of a rollback incident record, for set_stats
description:
  - Reads C(<incidents dir>/<incident id>/incident.json), written by the C(chatbot.rollback.rollback_record)
    callback, and returns its essentials (incident id, outcome, versions, phases with status and duration, the
    Appendix A checklist, where the record is), redacted.
  - The incidents dir is found as the callback finds it - the extra var C(rollback_incidents_dir), else
    C(ROLLBACKCTL_INCIDENTS_DIR), else C(incidents/) in the project; under AWX the job's artifacts dir when no
    mounted folder is given.
  - When there is no record (the callback is off, as under the rollbackctl wrapper, or no rollback phase ran)
    it returns C(outcome=no_record) instead of failing.
options:
  _terms:
    description: The incident id (one).
    required: true
    type: str
"""

EXAMPLES = r"""
- name: Publish the rollback summary (the job's artifacts under AWX)
  ansible.builtin.set_stats:
    data:
      rollback_summary: "{{ lookup('chatbot.rollback.incident_summary', hostvars['localhost'].rollback_incident_id) }}"
"""

RETURN = r"""
_raw:
  description: One summary (a dictionary with incident_id, outcome, phases, checklist, record, record_persistent).
  type: list
  elements: dict
"""

import os
from pathlib import Path

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

try:
    from rollbackctl import awx, record
except ImportError as exc:  # the collection without its Python package
    ROLLBACKCTL_IMPORT_ERROR = exc
else:
    ROLLBACKCTL_IMPORT_ERROR = None


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        if len(terms) != 1:
            raise AnsibleError("incident_summary takes one incident id")
        incident_id = str(terms[0] or "")
        if ROLLBACKCTL_IMPORT_ERROR is not None:
            return [
                {
                    "incident_id": incident_id,
                    "outcome": "no_record",
                    "phases": [],
                    "checklist": [],
                    "outcome_summary": f"the rollbackctl Python package is not importable ({ROLLBACKCTL_IMPORT_ERROR})",
                }
            ]
        variables = variables or {}
        playbook_dir = variables.get("playbook_dir")
        project = str(Path(playbook_dir).parent) if playbook_dir else None
        where = awx.incidents_dir(variables, os.environ, project)
        if not incident_id:
            return [awx.no_record(None, "no incident id: preflight did not run")]
        try:
            data = record.read_record(where.path / incident_id)
        except Exception as exc:  # not written (callback off, nothing ran) or unreadable: say so, do not fail
            return [awx.no_record(incident_id, f"no incident record in {where.path / incident_id} ({exc})")]
        return [awx.summary(data, where)]
