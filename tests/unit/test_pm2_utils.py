"""Pure logic of the pm2 module_utils: parsing, planning, summaries."""

from __future__ import annotations

import json

import pytest
from ansible_collections.chatbot.rollback.plugins.module_utils.pm2 import Pm2Error, parse_jlist, plan, summarize


def _proc(name="app", status="online", pid=100, restarts=0, unstable=0, secret="s3cr3t"):
    return {
        "name": name, "pm_id": pid - 100, "pid": pid,
        "monit": {"memory": 1024, "cpu": 1},
        "pm2_env": {"status": status, "restart_time": restarts, "unstable_restarts": unstable,
                    "exec_mode": "cluster_mode", "pm_cwd": "/opt/app/current",
                    "env": {"MONGODB_URI": f"mongodb://u:{secret}@h/db"}, "MONGODB_URI": secret},
    }


def test_parse_jlist_keeps_only_whitelisted_fields():
    text = "some pm2 banner\n" + json.dumps([_proc(), _proc(pid=101)])
    processes = parse_jlist(text)
    assert [p["pid"] for p in processes] == [100, 101]
    assert "s3cr3t" not in json.dumps(processes)
    assert processes[0]["status"] == "online"


@pytest.mark.parametrize("text", ["", "no json here", "[{broken"])
def test_parse_jlist_rejects_garbage(text):
    with pytest.raises(Pm2Error):
        parse_jlist(text)


def _instances(*statuses):
    return parse_jlist(json.dumps([_proc(status=s, pid=100 + i) for i, s in enumerate(statuses)]))


@pytest.mark.parametrize(
    ("state", "statuses", "expected", "action"),
    [
        ("started", (), None, "start"),
        ("started", ("online", "online"), None, None),
        ("started", ("online", "online"), 2, None),
        ("started", ("online",), 2, "restart"),
        ("started", ("online", "errored"), None, "restart"),
        ("started", ("stopped", "stopped"), None, "restart"),
        ("stopped", ("online", "online"), None, "stop"),
        ("stopped", ("stopped", "stopped"), None, None),
        ("stopped", (), None, None),
        ("absent", (), None, None),
        ("absent", ("stopped",), None, "delete"),
        ("reloaded", ("online", "online"), None, "reload"),
        ("reloaded", (), None, "start"),
        ("restarted", ("online",), None, "restart"),
    ],
)
def test_plan(state, statuses, expected, action):
    assert plan(state, _instances(*statuses), expected) == action


def test_plan_rejects_unknown_state():
    with pytest.raises(ValueError, match="unknown state"):
        plan("sideways", [], None)


def test_summarize_counts_restarts_and_online():
    instances = parse_jlist(json.dumps([_proc(restarts=2, unstable=1), _proc(pid=101, status="errored")]))
    summary = summarize(instances)
    assert summary["instances"] == 2
    assert summary["online"] == 1
    assert summary["restarts"] == 2
    assert summary["unstable_restarts"] == 1
    assert summary["statuses"] == ["errored", "online"]
