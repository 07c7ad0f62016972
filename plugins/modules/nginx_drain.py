#!/usr/bin/python
"""Ansible module: wait for in-flight requests behind nginx to finish."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nginx_drain
short_description: Wait until nginx has no requests in flight, reading stub_status
description:
  - Polls an nginx C(stub_status) URL and waits until the requests in flight (reading + writing, less the
    probe itself) are at or below O(max_in_flight), or O(timeout) seconds have passed.
  - Idle keep-alive connections (C(Waiting)) are not requests and do not hold the drain.
  - Read-only; never reports a change. Reports every sample it took, so the incident record shows what
    was seen.
version_added: "0.1.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
options:
  url:
    description: The stub_status URL, e.g. C(http://127.0.0.1/nginx_status).
    type: str
    required: true
  timeout:
    description: Seconds to wait at most.
    type: int
    default: 30
  interval:
    description: Seconds between samples.
    type: float
    default: 0.5
  max_in_flight:
    description: Drained when at most this many requests are in flight.
    type: int
    default: 0
  fail_on_timeout:
    description: Fail when the requests did not drain in time (else report RV(drained=false) and go on).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Let in-flight requests finish before touching the app
  chatbot.rollback.nginx_drain:
    url: http://127.0.0.1/nginx_status
    timeout: 60
"""

RETURN = r"""
drained:
  description: Whether the requests in flight fell to O(max_in_flight) in time.
  returned: always
  type: bool
waited_s:
  description: Seconds waited.
  returned: always
  type: float
initial:
  description: The first stub_status reading, with C(in_flight).
  returned: always
  type: dict
  sample: {"active": 5, "reading": 0, "writing": 3, "waiting": 2, "in_flight": 2}
final:
  description: The last stub_status reading, with C(in_flight).
  returned: always
  type: dict
samples:
  description: Number of readings taken.
  returned: always
  type: int
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url
from ansible_collections.chatbot.rollback.plugins.module_utils.nginx_status import (
    StubStatusError,
    in_flight,
    parse_stub_status,
)


def _read(url: str) -> dict:
    with open_url(url, timeout=5, validate_certs=False) as response:
        status = parse_stub_status(response.read().decode("utf-8", errors="replace"))
    return {**status, "in_flight": in_flight(status)}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "timeout": {"type": "int", "default": 30},
            "interval": {"type": "float", "default": 0.5},
            "max_in_flight": {"type": "int", "default": 0},
            "fail_on_timeout": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    start = time.monotonic()
    samples = 0
    try:
        initial = current = _read(params["url"])
        samples = 1
        while current["in_flight"] > params["max_in_flight"] and time.monotonic() - start < params["timeout"]:
            time.sleep(params["interval"])
            current = _read(params["url"])
            samples += 1
    except (StubStatusError, OSError, ValueError) as exc:
        module.fail_json(msg=f"cannot read nginx stub_status at {params['url']}: {exc}")
    drained = current["in_flight"] <= params["max_in_flight"]
    result = {"changed": False, "drained": drained, "waited_s": round(time.monotonic() - start, 3),
              "initial": initial, "final": current, "samples": samples}
    if not drained and params["fail_on_timeout"]:
        module.fail_json(msg=f"{current['in_flight']} requests still in flight after {params['timeout']}s", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
