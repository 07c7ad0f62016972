#!/usr/bin/python
"""Ansible module: manage one named pm2 application idempotently."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pm2_process
short_description: Start, stop, reload, restart or delete a pm2 application
description:
  - Reads the current state of a named pm2 application from C(pm2 jlist) and acts only when the
    requested state differs from it (O(state=started), O(state=stopped), O(state=absent)).
  - O(state=reloaded) and O(state=restarted) always act; use them from handlers or after a release switch.
    In cluster mode C(pm2 reload) replaces workers one by one (zero downtime); in fork mode it is a restart.
  - After acting it waits until every instance is online and reports restart counts, so a
    crash-looping worker is seen as a failure rather than a success.
  - Only a whitelist of process fields is returned; pm2's per-process environment (which may hold
    secrets) is never returned.
version_added: "0.1.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
  - chatbot.rollback.pm2
options:
  state:
    description: Desired state.
    type: str
    choices: [started, stopped, reloaded, restarted, absent]
    default: started
  ecosystem:
    description:
      - An ecosystem file that declares the application. Used to start, reload and restart it
        (with C(--only NAME)), so that a changed file is taken into account.
      - Mutually exclusive with O(script).
    type: path
  script:
    description: Script to start in fork mode when there is no ecosystem file.
    type: path
  interpreter:
    description: Interpreter for O(script) (for example C(bash)).
    type: str
  cwd:
    description: Working directory for O(script).
    type: path
  instances:
    description:
      - Number of instances expected online. When set, O(state=started) also acts when fewer or more
        instances are online.
    type: int
  wait_timeout:
    description: Seconds to wait for every instance to be online after an action. C(0) does not wait.
    type: int
    default: 60
  serve_dir:
    description:
      - The directory the workers must serve from, usually the C(current) link of the deployment.
      - When set, O(state=started) also reloads an application whose online workers run in another directory
        (links resolved) - workers still serving the release of before, as a run killed between switching
        C(current) and reloading leaves them. Without it, such a rerun would see nothing to do.
    type: path
  max_restarts:
    description:
      - Fail when the instances restarted more than this many times while waiting (a crash loop).
    type: int
    default: 0
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Shows the app's instances, online count, statuses and pids before and after (predicted in check mode).
"""

EXAMPLES = r"""
- name: Start the app from its ecosystem file
  chatbot.rollback.pm2_process:
    name: app
    pm2_home: /opt/chatbot-platform/.pm2
    ecosystem: /opt/chatbot-platform/shared/ecosystem.config.js
    instances: 2

- name: Reload the app after a release switch
  chatbot.rollback.pm2_process:
    name: app
    pm2_home: /opt/chatbot-platform/.pm2
    ecosystem: /opt/chatbot-platform/shared/ecosystem.config.js
    state: reloaded

- name: Stop the app so that no writes arrive
  chatbot.rollback.pm2_process:
    name: app
    pm2_home: /opt/chatbot-platform/.pm2
    state: stopped
"""

RETURN = r"""
action:
  description: The pm2 command that ran (V(start), V(stop), V(reload), V(restart), V(delete)) or V(none).
  returned: always
  type: str
  sample: reload
before:
  description: Summary of the application before the action.
  returned: always
  type: dict
  sample: {"instances": 2, "online": 2, "statuses": ["online"], "restarts": 0, "pids": [101, 102]}
after:
  description: Summary of the application after the action (equal to RV(before) in check mode).
  returned: always
  type: dict
stale:
  description: Directories online workers served that are not O(serve_dir) (before the action); empty when none.
  returned: when O(serve_dir) is set
  type: list
  elements: str
  sample: ["/opt/chatbot-platform/releases/v1.0.0"]
processes:
  description: Whitelisted fields of each instance after the action.
  returned: always
  type: list
  elements: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chatbot.rollback.plugins.module_utils.pm2 import (
    Pm2,
    Pm2Error,
    diff_view,
    is_running,
    plan,
    pm2_argument_spec,
    pm2_from_module,
    predicted,
    select,
    stale_workers,
    summarize,
)


def _command(action: str, params: dict) -> list[str]:
    name = params["name"]
    if action in ("stop", "delete"):
        return [action, name]
    if params["ecosystem"]:
        args = [action, params["ecosystem"], "--only", name]
    elif action == "start":
        args = ["start", params["script"], "--name", name]
        if params["interpreter"]:
            args += ["--interpreter", params["interpreter"]]
        if params["cwd"]:
            args += ["--cwd", params["cwd"]]
    else:
        args = [action, name]
    if action in ("reload", "restart"):
        args.append("--update-env")
    return args


def _wait(pm2: Pm2, params: dict, action: str) -> list[dict]:
    deadline = time.monotonic() + params["wait_timeout"]
    while True:
        instances = select(pm2.processes(), params["name"])
        if action == "delete" and not instances:
            return instances
        if action == "stop" and instances and all(p["status"] == "stopped" for p in instances):
            return instances
        if action not in ("stop", "delete") and is_running(instances, params["instances"]):
            return instances
        if time.monotonic() >= deadline:
            return instances
        time.sleep(0.5)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **pm2_argument_spec(),
            "state": {
                "type": "str",
                "default": "started",
                "choices": ["started", "stopped", "reloaded", "restarted", "absent"],
            },
            "ecosystem": {"type": "path"},
            "script": {"type": "path"},
            "interpreter": {"type": "str"},
            "cwd": {"type": "path"},
            "instances": {"type": "int"},
            "wait_timeout": {"type": "int", "default": 60},
            "max_restarts": {"type": "int", "default": 0},
            "serve_dir": {"type": "path"},
        },
        mutually_exclusive=[["ecosystem", "script"]],
        supports_check_mode=True,
    )
    params = module.params
    pm2 = pm2_from_module(module)

    try:
        instances = select(pm2.processes(), params["name"])
    except Pm2Error as exc:
        module.fail_json(msg=str(exc))
    before = summarize(instances)
    action = plan(params["state"], instances, params["instances"])
    stale = stale_workers(instances, params["serve_dir"]) if params["serve_dir"] else []
    if action is None and params["state"] == "started" and stale:
        action = "reload"  # what is served is not what is written: apply it
    extra = {"stale": stale} if params["serve_dir"] else {}
    if action == "start" and not (params["ecosystem"] or params["script"]):
        module.fail_json(msg=f"pm2 has no application named {params['name']!r} and neither ecosystem nor script "
                             "is given to start it", before=before)
    if action is None or module.check_mode:
        diff = {"before": diff_view(params["name"], before),
                "after": diff_view(params["name"], predicted(action, before, params["instances"]))}
        module.exit_json(changed=action is not None, action=action or "none", before=before, after=before,
                         processes=instances, **extra, **({"diff": diff} if module._diff else {}))

    try:
        pm2.run(*_command(action, params), timeout=max(120, params["wait_timeout"] + 30))
        instances = _wait(pm2, params, action) if params["wait_timeout"] else select(pm2.processes(),
                                                                                     params["name"])
    except Pm2Error as exc:
        module.fail_json(msg=str(exc), action=action, before=before)
    after = summarize(instances)
    result = {"changed": True, "action": action, "before": before, "after": after, "processes": instances, **extra}
    if module._diff:
        result["diff"] = {"before": diff_view(params["name"], before), "after": diff_view(params["name"], after)}
    if action not in ("stop", "delete") and params["wait_timeout"] and not is_running(instances,
                                                                                      params["instances"]):
        module.fail_json(msg=f"pm2 {action} {params['name']}: not every instance came online within "
                             f"{params['wait_timeout']}s (statuses: {after['statuses']})", **result)
    new_restarts = after["unstable_restarts"] - (before["unstable_restarts"] if action != "start" else 0)
    if action not in ("stop", "delete") and new_restarts > params["max_restarts"]:
        module.fail_json(msg=f"pm2 {action} {params['name']}: {new_restarts} unstable restarts (crash loop?)",
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
