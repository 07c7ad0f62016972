#!/usr/bin/python
"""Ansible module: check the platform's outbound (third-party) integrations after a rollback (plan step 8)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: integration_check
short_description: Check the platform's third-party integrations end to end
description:
  - One verification check C({name, scope, value, threshold, unit, verdict, detail}) per integration of
    O(integrations), named C(integration_<name>).
  - Kind C(reply_webhook) - end to end. The synthetic user logs in through O(url), sends a message, the app POSTs
    the bot's reply to its webhook (C(REPLY_WEBHOOK_URL) of the app), and the app's delivery report in the answer
    must say the receiver took it (2xx). The message and the reply are deleted again. A receiver that is down or
    refuses fails the check; an app that did not call the webhook fails it too. In check mode no message is
    sent and the check is skipped.
  - Kind C(http) - the integration's endpoint (C(url)) must answer, with one of C(expect_status) when given, else
    any status below 500.
  - No integration declared - one skipped check C(integrations) saying none are declared.
version_added: "0.2.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
options:
  integrations:
    description:
      - The declared integrations, each C({name, kind, url, method, expect_status, timeout}); C(kind) is
        C(reply_webhook) (default) or C(http); C(url) is required for C(http).
    type: list
    elements: dict
    default: []
  url:
    description: Base URL of the web tier the triggering message is sent through.
    type: str
    default: http://127.0.0.1
  user:
    description: Synthetic user that sends the triggering message.
    type: str
    default: synthetic-monitor
  password:
    description: Its password.
    type: str
    default: ""
  bypass_token:
    description: X-Maintenance-Bypass header value.
    type: str
    default: ""
  conversation_title:
    description: Conversation of the synthetic user the message goes to (else its newest; created when it has none).
    type: str
    default: synthetic verification
  timeout:
    description: Timeout of each HTTP request, in seconds.
    type: float
    default: 10
attributes:
  check_mode:
    support: full
    details: In check mode no message is sent; C(reply_webhook) checks are skipped, C(http) ones run.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Check the reply webhook end to end
  chatbot.rollback.integration_check:
    url: http://127.0.0.1
    password: "{{ vault_synthetic_password }}"
    integrations:
      - name: reply_webhook
        kind: reply_webhook
      - name: crm
        kind: http
        url: https://crm.example.com/health
        expect_status: [200]
  register: integrations
"""

RETURN = r"""
checks:
  description: One check per integration (or one skipped check when none are declared).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "integration_reply_webhook", "scope": "full", "value": 204, "threshold": null,
            "unit": "http status", "verdict": "pass",
            "detail": "the bot's reply was POSTed by the app and taken by the receiver (HTTP 204, 3 ms)"}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chatbot.rollback.plugins.module_utils.api_check import Api
from ansible_collections.chatbot.rollback.plugins.module_utils.post_checks import (
    DeclarationError,
    integration_checks,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "integrations": {"type": "list", "elements": "dict", "default": []},
            "url": {"type": "str", "default": "http://127.0.0.1"},
            "user": {"type": "str", "default": "synthetic-monitor"},
            "password": {"type": "str", "default": "", "no_log": True},
            "bypass_token": {"type": "str", "default": "", "no_log": True},
            "conversation_title": {"type": "str", "default": "synthetic verification"},
            "timeout": {"type": "float", "default": 10.0},
        },
        supports_check_mode=True,
    )
    p = module.params
    api = Api(p["url"], timeout=p["timeout"], bypass_token=p["bypass_token"], use_proxy=False) if p["url"] else None
    try:
        checks = integration_checks(p["integrations"], api, p["user"], p["password"], p["timeout"],
                                    write=not module.check_mode, conversation_title=p["conversation_title"])
    except DeclarationError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, checks=checks)


if __name__ == "__main__":
    main()
