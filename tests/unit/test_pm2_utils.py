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


def _started(*ages_s, now_ms=1_800_000_000_000, status="online"):
    """Workers whose current process started `ages_s` seconds before `now_ms`."""
    return [{"status": status, "pid": 100 + i, "pm_uptime": now_ms - age * 1000} for i, age in enumerate(ages_s)]


@pytest.mark.parametrize(
    ("ages", "observe_s", "wait"),
    [
        ((120, 60), 5, 0.0),  # every worker up longer than the window: one sample proves no restart
        ((5, 60), 5, 0.0),  # exactly the window
        ((1.5, 60), 5, 3.5),  # the youngest (just reloaded) decides
        ((0, 0), 5, 5.0),
        ((120,), 0, 0.0),  # no restart check asked
    ],
)
def test_settle_wait_is_what_the_youngest_worker_lacks_of_the_window(ages, observe_s, wait):
    from ansible_collections.chatbot.rollback.plugins.module_utils.pm2 import settle_wait

    assert settle_wait(_started(*ages), observe_s, 1_800_000_000_000) == pytest.approx(wait)


@pytest.mark.parametrize(
    "instances",
    [
        [],  # nothing runs: the full window (the check then fails on what it finds)
        _started(120, status="errored"),
        [{"status": "online", "pid": 100}],  # a pm2 that does not say when the worker started
        [{"status": "online", "pid": 100, "pm_uptime": "yesterday"}],
        _started(-30),  # a start time in the future (clock step): not trusted
    ],
)
def test_settle_wait_is_the_whole_window_when_start_times_cannot_be_trusted(instances):
    from ansible_collections.chatbot.rollback.plugins.module_utils.pm2 import settle_wait

    assert settle_wait(instances, 5, 1_800_000_000_000) == 5.0


def test_restart_check_reads_the_look_back_window_and_still_catches_a_restart_after_the_wait():
    from ansible_collections.chatbot.rollback.plugins.modules.pm2_health import checks_of

    settled = _instances("online", "online")
    _, restarts, _ = checks_of(settled, settled, 2, 5, 0, "app", True, waited_s=0)
    assert restarts["verdict"] == "pass" and "in the last 5 s" in restarts["detail"]
    after = [dict(p) for p in settled]
    after[1].update(pid=200, restart_time=1)  # the young worker died during the wait and pm2 respawned it
    _, restarts, _ = checks_of(settled, after, 2, 5, 0, "app", True, waited_s=3.5)
    assert restarts["verdict"] == "fail" and "workers replaced" in restarts["detail"]
