#!/usr/bin/python
"""Ansible module: read-only health checks of a pm2 application (online instances, restart loops)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pm2_health
short_description: Check that a pm2 application is online and not restart-looping
description:
  - Returns three verification checks C({name, scope, value, threshold, unit, verdict, detail}) -
    C(pm2_online) (instances online at the last sample against O(instances); every instance must be online),
    C(pm2_restarts) (no worker restarted or replaced within the last O(observe_s) seconds, against 0) and
    C(pm2_unstable_restarts) (pm2's count of restarts within C(min_uptime), against O(max_unstable_restarts)).
  - The restart check is a readiness check, not a fixed wait. pm2 says when each worker's current process started
    (C(pm_uptime)); when every worker has been up O(observe_s) seconds already, one sample proves that none restarted
    within the window and nothing is waited for. Otherwise the module waits until the youngest worker is
    O(observe_s) seconds old (at most O(observe_s)), samples again and compares the restart counters and pids.
  - It never starts a pm2 daemon - when none runs in O(pm2_home) the application counts as not running.
  - It never fails because a check failed; the caller decides. Read-only, never reports a change.
    Only whitelisted process fields are returned (pm2's process environment can hold secrets).
version_added: "0.1.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
  - chatbot.rollback.pm2
options:
  instances:
    description: Number of instances expected online; when not given, at least one.
    type: int
  observe_s:
    description:
      - Seconds every worker must have run without a restart, up to the last sample; C(0) takes one sample (no
        restart check).
    type: float
    default: 5
  max_unstable_restarts:
    description:
      - Largest acceptable C(unstable_restarts) (pm2 keeps this count for the life of the process list; C(pm2 reset
        NAME) clears it after a crash loop was dealt with).
    type: int
    default: 0
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same way in check mode.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Check the app's workers over five seconds
  chatbot.rollback.pm2_health:
    name: app
    pm2_home: /opt/chatbot-platform/.pm2
    instances: 2
    observe_s: 5
  register: pm2
"""

RETURN = r"""
checks:
  description: The checks C(pm2_online), C(pm2_restarts) and C(pm2_unstable_restarts).
  returned: always
  type: list
  elements: dict
  sample:
    - {"name": "pm2_online", "scope": "app", "value": 2, "threshold": 2, "unit": "instances",
       "verdict": "pass", "detail": "statuses: online"}
before:
  description: Summary of the application at the first sample.
  returned: always
  type: dict
  sample: {"instances": 2, "online": 2, "statuses": ["online"], "restarts": 0, "unstable_restarts": 0,
           "pids": [101, 102], "cwd": ["/opt/chatbot-platform/releases/v0.9.0"]}
after:
  description: Summary of the application at the last sample (equal to RV(before) when nothing was waited for).
  returned: always
  type: dict
waited_s:
  description: Seconds waited for the youngest worker to reach O(observe_s) (C(0) when every worker had).
  returned: always
  type: float
  sample: 0.0
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chatbot.rollback.plugins.module_utils.api_check import FAIL, PASS, SKIP, check
from ansible_collections.chatbot.rollback.plugins.module_utils.pm2 import (
    Pm2Error,
    is_running,
    pm2_argument_spec,
    pm2_from_module,
    restart_growth,
    select,
    settle_wait,
    summarize,
)


def checks_of(first: list[dict], second: list[dict], expected: int | None, observe_s: float, max_unstable: int,
              name: str, daemon: bool, waited_s: float | None = None) -> list[dict]:
    """The three verdicts from two samples of the app's instances (the same one twice when every worker was up
    `observe_s` at the first: `waited_s` 0)."""
    before, after = summarize(first), summarize(second)
    wanted = expected if expected is not None else ">= 1"
    statuses = ", ".join(after["statuses"]) or "none"
    if not after["instances"]:
        reason = f"pm2 runs no application named {name!r}" if daemon else "no pm2 daemon runs in this pm2_home"
        online = check("pm2_online", "app", 0, wanted, "instances", FAIL, reason)
    else:
        running = is_running(second, expected)
        online = check("pm2_online", "app", after["online"], wanted, "instances", PASS if running else FAIL,
                       f"{after['instances']} instances, statuses: {statuses}")
    if observe_s <= 0:
        restarts = check("pm2_restarts", "app", None, 0, "restarts", SKIP, "observe_s is 0: one sample only")
    elif not after["instances"]:
        restarts = check("pm2_restarts", "app", None, 0, "restarts", FAIL, "not running")
    else:
        growth = restart_growth(before, after)
        bad = growth["restarts"] > 0 or growth["replaced_pids"]
        if waited_s == 0 and not bad:
            detail = f"0 restarts in the last {observe_s:g} s (every worker up at least that long)"
        else:
            detail = f"{growth['restarts']} restarts in {observe_s:g} s"
        if growth["replaced_pids"]:
            detail += f"; workers replaced (pids gone: {', '.join(map(str, growth['replaced_pids']))})"
        restarts = check("pm2_restarts", "app", max(growth["restarts"], len(growth["replaced_pids"])), 0,
                         "restarts", FAIL if bad else PASS, detail)
    if not after["instances"]:
        unstable = check("pm2_unstable_restarts", "app", None, max_unstable, "restarts", FAIL, "not running")
    else:
        count = after["unstable_restarts"]
        unstable = check("pm2_unstable_restarts", "app", count, max_unstable, "restarts",
                         PASS if count <= max_unstable else FAIL,
                         "restarts within min_uptime since the processes were started (pm2 reset clears them)")
    return [online, restarts, unstable]


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **pm2_argument_spec(),
            "instances": {"type": "int"},
            "observe_s": {"type": "float", "default": 5},
            "max_unstable_restarts": {"type": "int", "default": 0},
        },
        supports_check_mode=True,
    )
    params = module.params
    pm2 = pm2_from_module(module)
    try:
        first = select(pm2.processes(), params["name"])
        waited = settle_wait(first, params["observe_s"], time.time() * 1000)
        if waited > 0:
            time.sleep(waited)
            second = select(pm2.processes(), params["name"])
        else:
            second = first
    except Pm2Error as exc:
        module.fail_json(msg=str(exc))
    checks = checks_of(first, second, params["instances"], params["observe_s"], params["max_unstable_restarts"],
                       params["name"], pm2.daemon_running(), waited)
    module.exit_json(changed=False, checks=checks, before=summarize(first), after=summarize(second),
                     waited_s=round(waited, 3))


if __name__ == "__main__":
    main()
