#!/usr/bin/python
"""Ansible module: confirm the monitoring systems are operational after a rollback (plan step 8)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: monitoring_check
short_description: Confirm that the monitoring systems answer, scrape the platform and see its targets up
description:
  - One verification check C({name, scope, value, threshold, unit, verdict, detail}) per system of O(systems),
    named C(monitoring_<name>); value - the targets up, threshold - the targets scraped.
  - Kind C(prometheus) - C(/-/ready) must answer 200, C(/api/v1/targets) must list an active target for each job
    of C(jobs) (every active target when C(jobs) is empty), and every one of them must be up. Targets not
    scraped yet (C(unknown)) are waited for up to O(settle_s) seconds.
  - A monitoring system that does not answer is a failed check, not a skipped one.
  - No system declared - one skipped check C(monitoring) saying none are declared.
  - Read-only; never reports a change.
version_added: "0.2.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
options:
  systems:
    description: The declared monitoring systems, each C({name, kind, url, jobs}); C(kind) is C(prometheus) (default).
    type: list
    elements: dict
    default: []
  timeout:
    description: Timeout of each HTTP request, in seconds.
    type: float
    default: 10
  settle_s:
    description: How long to wait for targets not scraped yet, in seconds.
    type: float
    default: 30
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same way in check mode.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Confirm Prometheus scrapes the platform
  chatbot.rollback.monitoring_check:
    systems:
      - name: prometheus
        kind: prometheus
        url: http://prometheus.internal:9090
        jobs: [chatbot-platform, node]
  register: monitoring
"""

RETURN = r"""
checks:
  description: One check per monitoring system (or one skipped check when none are declared).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "monitoring_prometheus", "scope": "full", "value": 2, "threshold": 2, "unit": "targets up",
            "verdict": "pass", "detail": "Prometheus at http://127.0.0.1:9090 is ready and scrapes 2 targets, all up"}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chatbot.rollback.plugins.module_utils.post_checks import (
    DeclarationError,
    monitoring_checks,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "systems": {"type": "list", "elements": "dict", "default": []},
            "timeout": {"type": "float", "default": 10.0},
            "settle_s": {"type": "float", "default": 30.0},
        },
        supports_check_mode=True,
    )
    try:
        checks = monitoring_checks(module.params["systems"], module.params["timeout"], module.params["settle_s"])
    except DeclarationError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, checks=checks)


if __name__ == "__main__":
    main()
