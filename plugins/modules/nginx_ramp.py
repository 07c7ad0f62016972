#!/usr/bin/python
"""Ansible module: reopen traffic at nginx in steps, each checked as served and judged from its traffic."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nginx_ramp
short_description: Reopen traffic at nginx in steps (split on a stable client key), each step checked and judged
description:
  - Rewrites an http-level nginx file holding a C(split_clients) block that sets O(variable) to C(1) for the
    share of clients a step lets through, validates it with C(nginx -t) (the previous file is put back when it
    fails) and reloads nginx, one step after the other.
  - The split is on a stable key (the O(key_header) request header, by default C(Authorization), else
    O(key_fallback), by default the address), so a client let through at one step stays let through at the next.
  - After each reload it checks what nginx really serves, instead of waiting a fixed time - a synthetic
    client inside the step must get something else than 503 from O(probe_url), one outside it must get 503 -
    and records both answers.
  - With O(traffic_log), each step is judged after O(interval) seconds from the requests nginx logged in that
    time that reached the app (5xx ratio, p95 latency, at least O(min_requests) of them; fewer is not healthy).
    When real traffic is too low, synthetic requests from clients inside the step are sent to O(synthetic_url).
    A step that fails closes the ramp again (0 %), reloads nginx and fails, so the platform stays in a safe,
    recorded state; a rerun continues from the step the file says is open.
  - Does nothing when the file does not exist (traffic is not held back, nothing to reopen). Steps at or
    below the share already open are skipped, so a rerun never shuts out clients that were let through.
version_added: "0.2.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
options:
  path:
    description: The http-level ramp file (role maintenance_mode writes it at 0 % when maintenance goes on).
    type: path
    required: true
  steps:
    description: Shares of clients to let through, in whole percents, strictly increasing, each in 1..99.
    type: list
    elements: int
    required: true
  interval:
    description: Seconds each step stays before the next one (and over which it is judged).
    type: float
    default: 2.0
  variable:
    description: Name of the nginx variable the C(split_clients) block sets (without C($)).
    type: str
    default: chatbot_maintenance_ramp_open
  key_header:
    description:
      - Request header whose value is the stable split key (a user's token); the file maps it to C($VARIABLE_key).
      - The probe and synthetic clients send their key in this header.
    type: str
    default: Authorization
  key_fallback:
    description:
      - The key of requests without O(key_header), nginx variables only (behind a proxy, C($http_x_forwarded_for)).
    type: str
    default: $remote_addr
  nginx_command:
    description: argv that runs nginx (C(-t -q) and C(-s reload) are appended).
    type: list
    elements: str
    required: true
  probe_url:
    description:
      - URL checked after each reload with a synthetic client the step lets through and one it holds back.
      - Empty skips the check.
    type: str
    default: ""
  probe_timeout:
    description: Seconds to wait for nginx to serve a step after its reload.
    type: float
    default: 10.0
  traffic_log:
    description: The nginx C(chatbot_traffic) JSON access log; empty disables the judgment of steps.
    type: path
    default: ""
  min_requests:
    description: Requests that reached the app needed to judge a step.
    type: int
    default: 3
  max_error_ratio:
    description: Highest 5xx ratio a healthy step may have.
    type: float
    default: 0.05
  latency_threshold:
    description: Highest p95 latency, in seconds, a healthy step may have (the plan's response time threshold).
    type: float
    default: 3.0
  synthetic_url:
    description: URL of the synthetic requests sent when real traffic is below O(min_requests); empty sends none.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
    details: Reports which steps would be taken, changes nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Reopen a quarter, then half of the clients, two seconds each, judged from their traffic
  chatbot.rollback.nginx_ramp:
    path: /etc/nginx/conf.d/chatbot-maintenance-ramp.conf
    steps: [25, 50]
    interval: 2
    nginx_command: [/usr/sbin/nginx]
    probe_url: http://127.0.0.1/
    traffic_log: /var/log/nginx/chatbot-traffic.json
    synthetic_url: http://127.0.0.1/health
"""

RETURN = r"""
opened_before:
  description: The share the file said was open before this run (0 when the ramp had not started).
  returned: when the file exists
  type: int
steps:
  description: One entry per step taken, with when it was served, what the probe clients got and the verdict.
  returned: always
  type: list
  elements: dict
  sample: [{"percent": 25, "served_after_s": 0.12, "probe_inside": 200, "probe_outside": 503,
            "requests": 41, "errors": 0, "error_ratio": 0.0, "p95_s": 0.08, "synthetic": 0, "healthy": true,
            "reasons": []}]
closed:
  description: Whether a failed step closed the ramp again (0 %).
  returned: always
  type: bool
"""

import os
import subprocess
import tempfile
import time
import urllib.error

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url
from ansible_collections.chatbot.rollback.plugins.module_utils.traffic_ramp import (
    check_steps,
    judge,
    parse_percent,
    parse_traffic,
    render,
    synthetic_keys,
)


class RampError(Exception):
    """A step could not be applied; the message says why."""


def _status(url: str, header: str, key: str, marker: str) -> int:
    """One request as a client with this key, marked (X-Ramp-Probe) so that the traffic log tells it apart."""
    try:
        with open_url(url, headers={header: key, "X-Ramp-Probe": marker}, timeout=5, validate_certs=False,
                      follow_redirects="none") as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def _write(path: str, text: str) -> None:
    directory = os.path.dirname(path) or "."
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o640
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".ramp-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _nginx(command: list[str], *arguments: str) -> None:
    completed = subprocess.run([*command, *arguments], capture_output=True, text=True, timeout=60, check=False)
    if completed.returncode != 0:
        raise RampError(f"nginx {' '.join(arguments)} failed: {(completed.stderr or completed.stdout).strip()[-600:]}")


def _apply(params: dict, percent: int, previous: str) -> None:
    """Write a step, keep it only if nginx -t accepts it, reload."""
    _write(params["path"], render(params["variable"], params["key_header"], params["key_fallback"], percent))
    try:
        _nginx(params["nginx_command"], "-t", "-q")
    except RampError:
        _write(params["path"], previous)
        raise
    _nginx(params["nginx_command"], "-s", "reload")


def _served(params: dict, percent: int, previous: int) -> dict:
    """Poll until a client this step lets through passes and one outside gets 503 (readiness, not a fixed wait).

    The client let through was held back by the previous step, so the old workers cannot pass the check.
    """
    if not params["probe_url"]:
        return {}
    inside, outside = synthetic_keys(percent, previous)
    start = time.monotonic()
    while True:
        got_inside = _status(params["probe_url"], params["key_header"], inside, "probe")
        got_outside = _status(params["probe_url"], params["key_header"], outside, "probe") if outside else None
        if got_inside not in (0, 503) and got_outside in (None, 503):
            return {"served_after_s": round(time.monotonic() - start, 3), "probe_inside": got_inside,
                    "probe_outside": got_outside}
        if time.monotonic() - start > params["probe_timeout"]:
            raise RampError(f"nginx does not serve the {percent}% step after {params['probe_timeout']}s: a client"
                            f" inside it got {got_inside}, one outside got {got_outside}")
        time.sleep(0.1)


def _held_back(params: dict, percent: int) -> None:
    """After closing: poll until a client the step had let through gets 503 again."""
    if not params["probe_url"] or percent <= 0:
        return
    inside, _outside = synthetic_keys(percent)
    start = time.monotonic()
    while _status(params["probe_url"], params["key_header"], inside, "probe") != 503:
        if time.monotonic() - start > params["probe_timeout"]:
            raise RampError(f"nginx still lets the {percent}% step through {params['probe_timeout']}s after closing")
        time.sleep(0.1)


def _log_lines(path: str, offset: int) -> list[str]:
    try:
        with open(path, "rb") as stream:
            stream.seek(offset)
            return stream.read().decode("utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []


def _log_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _judge(params: dict, percent: int, offset: int, since: float) -> dict:
    lines = _log_lines(params["traffic_log"], offset)
    requests = parse_traffic(lines, since, time.time())
    synthetic = 0
    missing = params["min_requests"] - len(requests)
    if missing > 0 and params["synthetic_url"]:
        inside, _outside = synthetic_keys(percent, prefix="Bearer ramp-synthetic-")
        for _number in range(missing):
            _status(params["synthetic_url"], params["key_header"], inside, "synthetic")
            synthetic += 1
        time.sleep(0.05)  # the log line is written when the response is sent
        requests = parse_traffic(_log_lines(params["traffic_log"], offset), since, time.time())
    verdict = judge(requests, params["min_requests"], params["max_error_ratio"], params["latency_threshold"])
    return {**verdict, "synthetic": synthetic}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "steps": {"type": "list", "elements": "int", "required": True},
            "interval": {"type": "float", "default": 2.0},
            "variable": {"type": "str", "default": "chatbot_maintenance_ramp_open"},
            "key_header": {"type": "str", "default": "Authorization", "no_log": False},
            "key_fallback": {"type": "str", "default": "$remote_addr", "no_log": False},
            "nginx_command": {"type": "list", "elements": "str", "required": True},
            "probe_url": {"type": "str", "default": ""},
            "probe_timeout": {"type": "float", "default": 10.0},
            "traffic_log": {"type": "path", "default": ""},
            "min_requests": {"type": "int", "default": 3},
            "max_error_ratio": {"type": "float", "default": 0.05},
            "latency_threshold": {"type": "float", "default": 3.0},
            "synthetic_url": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        steps = check_steps(params["steps"])
        render(params["variable"], params["key_header"], params["key_fallback"], 0)
    except ValueError as exc:
        module.fail_json(msg=str(exc), steps=[], closed=False)
    if params["interval"] < 0:
        module.fail_json(msg=f"interval must not be negative, got {params['interval']}", steps=[], closed=False)
    if not os.path.exists(params["path"]):
        module.exit_json(changed=False, steps=[], closed=False,
                         msg=f"{params['path']} does not exist: traffic is not held back, nothing to reopen")
    with open(params["path"], encoding="utf-8") as stream:
        previous = stream.read()
    opened = parse_percent(previous) or 0
    remaining = [step for step in steps if step > opened]
    if module.check_mode or not remaining:
        module.exit_json(changed=bool(remaining), steps=[{"percent": step} for step in remaining], closed=False,
                         opened_before=opened)
    taken: list[dict] = []
    applied = False
    served_percent = opened
    try:
        for percent in remaining:
            step_entry = {"percent": percent}
            taken.append(step_entry)
            offset = _log_size(params["traffic_log"]) if params["traffic_log"] else 0
            _apply(params, percent, previous)
            applied = True
            previous = render(params["variable"], params["key_header"], params["key_fallback"], percent)
            since = time.time()
            step_entry.update(_served(params, percent, served_percent))
            served_percent = percent
            if params["interval"]:
                time.sleep(params["interval"])
            if params["traffic_log"]:
                step_entry.update(_judge(params, percent, offset, since))
                if not step_entry["healthy"]:
                    raise RampError(f"the {percent}% step was not healthy: " + "; ".join(step_entry["reasons"]))
    except (RampError, OSError, subprocess.SubprocessError) as exc:
        closed = False
        if applied:  # a step nginx took and that failed afterwards: hold traffic back again
            try:
                _apply(params, 0, previous)
                _held_back(params, taken[-1]["percent"])
                closed = True
            except (RampError, OSError, subprocess.SubprocessError) as close_exc:
                module.fail_json(msg=f"{exc}; closing the ramp again failed too: {close_exc}", steps=taken,
                                 closed=False, opened_before=opened)
        module.fail_json(msg=str(exc) + ("; traffic is held back again (0%)" if closed else ""), steps=taken,
                         closed=closed, opened_before=opened)
    module.exit_json(changed=True, steps=taken, closed=False, opened_before=opened)


if __name__ == "__main__":
    main()
