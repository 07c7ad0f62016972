#!/usr/bin/python
"""Ansible module: verification checks of the chatbot platform through its HTTP API."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: chatbot_api_check
short_description: Check the chatbot platform through its HTTP API (health, login, messaging, 5xx rate)
description:
  - Runs the HTTP checks of a verification scope against the platform's web URL (through nginx) and returns
    them as a list of checks C({name, scope, value, threshold, unit, verdict, detail}) with verdict
    C(pass), C(fail) or C(skip). It never fails because a check failed; the caller decides.
  - O(scope=app) (right after a code rollback, possibly before the database restore) - C(/health) answers
    (200, or 503 with a health body while the database is on another schema) and reports the expected release
    (and every worker does, from C(/metrics)); the synthetic user logs in, within the latency threshold.
  - O(scope=full) (post-rollback verification) adds - C(/health) status ok and the database schema compatible;
    the web URL is answered by nginx (C(Server) header); list the synthetic user's conversations, send a message
    in a conversation of the synthetic user (see O(conversation_title)), read it back, then delete it and the
    bot's reply; the response time of login, list conversations, send and list messages against
    O(latency_threshold_ms); the share of 5xx answers between two C(/metrics) samples taken before and after
    these requests, against O(max_5xx_rate); the share since the workers started, for information.
  - A latency equal to the threshold passes (the plan's trigger is "response times > 3 seconds"); missing data
    (no answer, unreadable or reset metrics) fails.
  - The password, the session token and the bypass token are sent in requests only and never returned.
version_added: "0.1.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
options:
  url:
    description: Base URL of the platform's web tier, for example C(https://chat.example.com).
    type: str
    required: true
  scope:
    description: Which checks to run.
    type: str
    choices: [app, full]
    default: full
  user:
    description: Username of the synthetic monitoring user.
    type: str
    required: true
  password:
    description: Password of the synthetic user.
    type: str
    required: true
  bypass_token:
    description:
      - Value of the C(X-Maintenance-Bypass) header, so that the checks reach the app while maintenance mode is on.
        Empty sends no header.
    type: str
    default: ""
  expected_version:
    description:
      - Release the platform must report (C(v0.9.0) and C(0.9.0) are the same).
      - When empty, the C(version) of O(release_file) is expected; when both are empty the check is skipped.
    type: str
    default: ""
  release_file:
    description:
      - A C(release.json) on the managed host whose C(version) is the expected release when O(expected_version)
        is empty, for example C(/opt/chatbot-platform/current/release.json) (the release C(current) points to).
        An unreadable file makes the version check fail.
    type: path
  latency_threshold_ms:
    description: Largest acceptable response time of a critical operation, in milliseconds (equal passes).
    type: float
    default: 3000
  max_5xx_rate:
    description: Largest acceptable share of 5xx answers during the verification (0.0 - any 5xx fails).
    type: float
    default: 0.0
  conversation_title:
    description:
      - The test message is sent in the synthetic user's conversation with this title, else in its newest
        conversation; a conversation with this title is created only when the user has none.
    type: str
    default: synthetic verification
  server_header:
    description: Start of the C(Server) header the web tier answers with; empty only checks that it answers.
    type: str
    default: nginx
  timeout:
    description: Timeout of each request, in seconds.
    type: float
    default: 10
  metrics_settle_s:
    description: Seconds to wait before the last C(/metrics) sample (workers write their counters every second).
    type: float
    default: 1.5
  use_proxy:
    description: Use the proxy of the environment (C(http_proxy)), if any.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    details: In check mode the read-only checks run and the messaging checks are skipped (no message is written).
  diff_mode:
    support: none
notes:
  - The only data it writes is the synthetic message, through the app's own API, and it deletes it (and the bot's
    reply) before it returns, so it reports C(changed=false). As any login does, logging in creates a session
    that expires on its own (12 h); sending moves the conversation's C(updated_at); a conversation is created
    once when the synthetic user has none. A send that fails with 5xx may have stored the message; without its id
    it cannot be deleted (the detail says so).
"""

EXAMPLES = r"""
- name: Check the app right after the code rollback (maintenance mode on)
  chatbot.rollback.chatbot_api_check:
    url: https://chat.example.com
    scope: app
    user: synthetic-monitor
    password: "{{ synthetic_password }}"
    bypass_token: "{{ maintenance_bypass_token }}"
    expected_version: v0.9.0
  register: api
  no_log: true

- name: Post-rollback verification of every critical operation
  chatbot.rollback.chatbot_api_check:
    url: https://chat.example.com
    scope: full
    user: synthetic-monitor
    password: "{{ synthetic_password }}"
    expected_version: v0.9.0
    latency_threshold_ms: 3000
    max_5xx_rate: 0.0
"""

RETURN = r"""
checks:
  description: The checks run, in order.
  returned: always
  type: list
  elements: dict
  sample:
    - {"name": "latency_login", "scope": "app", "value": 84.2, "threshold": 3000, "unit": "ms",
       "verdict": "pass", "detail": "HTTP 200"}
failed_checks:
  description: Names of the checks whose verdict is C(fail).
  returned: always
  type: list
  elements: str
  sample: ["messaging_send"]
summary:
  description: One line per failed check (name, value vs threshold, detail); empty when none failed.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chatbot.rollback.plugins.module_utils.api_check import (
    Api,
    Options,
    failed,
    release_version,
    run_checks,
    summary,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "scope": {"type": "str", "choices": ["app", "full"], "default": "full"},
            "user": {"type": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True},
            "bypass_token": {"type": "str", "default": "", "no_log": True},
            "expected_version": {"type": "str", "default": ""},
            "release_file": {"type": "path"},
            "latency_threshold_ms": {"type": "float", "default": 3000},
            "max_5xx_rate": {"type": "float", "default": 0.0},
            "conversation_title": {"type": "str", "default": "synthetic verification"},
            "server_header": {"type": "str", "default": "nginx"},
            "timeout": {"type": "float", "default": 10},
            "metrics_settle_s": {"type": "float", "default": 1.5},
            "use_proxy": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    if not params["url"].startswith(("http://", "https://")):
        module.fail_json(msg="url must start with http:// or https://")
    expected = params["expected_version"]
    if not expected and params["release_file"]:
        expected = release_version(params["release_file"])
    api = Api(params["url"], timeout=params["timeout"], bypass_token=params["bypass_token"],
              use_proxy=params["use_proxy"])
    options = Options(
        scope=params["scope"],
        user=params["user"],
        password=params["password"],
        expected_version=expected,
        latency_threshold_ms=params["latency_threshold_ms"],
        max_5xx_rate=params["max_5xx_rate"],
        write=not module.check_mode,
        conversation_title=params["conversation_title"],
        metrics_settle_s=params["metrics_settle_s"],
        server_header=params["server_header"],
    )
    checks = run_checks(api, options, module.no_log_values)
    module.exit_json(changed=False, checks=checks, failed_checks=[c["name"] for c in failed(checks)],
                     summary=summary(checks))


if __name__ == "__main__":
    main()
