"""Several phases in one ansible-playbook run: the generated playbook and how its events are read.

The run itself (the record kept phase by phase, failures, interruptions, resume) is exercised by the sandbox
and fault suites, which run `rollbackctl run` for real.
"""

from __future__ import annotations

import jinja2
import pytest
import yaml

from rollbackctl import batch
from rollbackctl.orchestrator import BATCHABLE


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unsafe", lambda loader, node: ("UNSAFE", loader.construct_scalar(node)))


def _plays(steps):
    return yaml.load(batch.playbook(steps, "/project/playbooks"), Loader=_Loader)  # noqa: S506 - test loader


def test_each_phase_playbook_sits_behind_a_boundary_play():
    plays = _plays([("announce", "notify.yml", {"notify_event": "rollback_started"}),
                    ("maintenance_off", "verify.yml", {"verify_scope": "full"}),
                    ("maintenance_off", "maintenance.yml", {"maintenance_state": "off"})])
    assert [play["name"] for play in plays] == [
        "rollbackctl phase announce notify.yml", "announce: notify.yml",
        "rollbackctl phase maintenance_off verify.yml", "maintenance_off: verify.yml",
        "rollbackctl phase maintenance_off maintenance.yml", "maintenance_off: maintenance.yml"]
    assert plays[1]["ansible.builtin.import_playbook"] == "/project/playbooks/notify.yml"
    assert plays[5]["vars"] == {"maintenance_state": "off"}
    boundary = plays[2]
    assert boundary["hosts"] == "all:localhost" and boundary["any_errors_fatal"] is True
    check, enter = boundary["tasks"]
    assert check["run_once"] and "difference(ansible_play_hosts)" in check["ansible.builtin.assert"]["that"][0]
    assert enter["name"] == "rollbackctl enter maintenance_off verify.yml"
    assert enter["delegate_to"] == "localhost" and enter["delegate_facts"] is True
    stamp = enter["ansible.builtin.set_fact"][batch.TIMES_FACT]
    assert "'maintenance_off_started': __now" in stamp and "'announce_ended': __now" in stamp
    # the second playbook of one phase starts nothing new
    second = plays[4]["tasks"][1]["ansible.builtin.set_fact"][batch.TIMES_FACT]
    assert "combine({})" in second


def test_peoples_words_stay_inert_and_run_times_are_templates():
    since = batch.phase_time("app_rollback", "started")
    plays = _plays([("verify_app", "verify.yml", {"verify_log_since": since, "note": "{{ lookup('pipe', 'id') }}",
                                                  "count": 3})])
    variables = plays[1]["vars"]
    assert variables["note"] == ("UNSAFE", "{{ lookup('pipe', 'id') }}")
    assert variables["count"] == 3
    assert variables["verify_log_since"].startswith("{{") and "app_rollback_started" in variables["verify_log_since"]


def test_the_times_templates_render_as_ansible_would():
    environment = jinja2.Environment()  # noqa: S701 - not HTML
    times = {"app_rollback_ended": "2026-12-02T10:00:05Z", "db_restore_ended": "2026-12-02T10:00:20Z"}
    hostvars = {"localhost": {batch.TIMES_FACT: times}}
    since = batch.phase_time("app_rollback", "ended")
    assert environment.from_string(since).render(hostvars=hostvars) == "2026-12-02T10:00:05Z"
    mixed = batch.latest(["2026-12-02T09:59:00Z", batch.phase_time("db_restore", "ended"), ""])
    assert isinstance(mixed, batch.Template)
    assert environment.from_string(mixed).render(hostvars=hostvars) == "2026-12-02T10:00:20Z"
    assert environment.from_string(mixed).render(hostvars={}) == "2026-12-02T09:59:00Z"
    assert batch.latest(["2026-12-02T09:59:00Z", "2026-12-02T10:01:00Z"]) == "2026-12-02T10:01:00Z"
    assert batch.latest(["", ""]) == ""


@pytest.mark.parametrize(("phase", "playbook"), [("Bad", "notify.yml"), ("announce", "../x.yml"),
                                                 ("announce", "notify.yml; rm")])
def test_only_phase_playbooks_are_imported(phase, playbook):
    with pytest.raises(ValueError):
        batch.playbook([(phase, playbook, {})], "/p")


def test_phase_time_refuses_other_names():
    with pytest.raises(ValueError):
        batch.phase_time("x' }}{{ 7*7", "ended")
    with pytest.raises(ValueError):
        batch.phase_time("app_rollback", "middle")


def test_events_are_read_per_phase():
    assert batch.entered({"event": "playbook_on_task_start",
                          "event_data": {"task": "rollbackctl enter db_restore db_restore.yml"}}) == (
        "db_restore", "db_restore.yml")
    assert batch.entered({"event": "playbook_on_task_start", "event_data": {"task": "Restore the backup"}}) is None
    assert batch.entered({"event": "runner_on_ok", "event_data": {"task": "rollbackctl enter x y.yml"}}) is None
    events = batch.PhaseEvents()
    for event in [
        {"event": "runner_on_ok", "event_data": {"host": "app1", "res": {"changed": True}}},
        {"event": "runner_on_ok", "event_data": {"host": "app2", "res": {"changed": False}}},
        {"event": "runner_on_ok", "event_data": {"host": "app1", "res": {
            "changed": False, "ansible_stats": {"data": {"verification": {"app": {"app1": []}}}, "aggregate": True}}}},
        {"event": "runner_on_failed", "event_data": {"host": "app2", "ignore_errors": True, "res": {}}},
        {"event": "runner_on_skipped", "event_data": {"host": "app2"}},
    ]:
        batch.fold(events, event)
    assert events.changed == 1 and events.hosts_changed == {"app1"}
    assert events.stats == [{"verification": {"app": {"app1": []}}}]


def test_what_runs_together():
    assert "preflight" not in BATCHABLE and "collect_logs" not in BATCHABLE
    assert {"maintenance_on", "app_rollback", "db_restore", "maintenance_off", "post_verify"} <= BATCHABLE
