"""People during a rollback: the roster in the record, the announcement, acknowledgements (`rollbackctl ack`)."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from pathlib import Path

import pytest
import yaml

from rollbackctl import people
from rollbackctl.cli import main
from rollbackctl.errors import AuthorityRefused, ExitCode, UsageError
from rollbackctl.orchestrator import steps_for
from rollbackctl.procedures import run_rollback
from rollbackctl.record import IncidentRecord, validate
from rollbackctl.report import render_html, render_markdown
from rollbackctl.roster import load_roster

PROJECT = Path(__file__).resolve().parents[2]
LOCAL = PROJECT / "inventories" / "local"
AUTHORITY = {
    "decided_by": "Dana Ops",
    "role": "lead_devops_engineer",
    "basis": "primary",
    "consensus": [],
    "approved_by": ["Dana Ops"],
    "explanation": "Primary",
}
NAMES = ["Dana Ops", "Ari App", "Dee Bee", "Ian Infra", "Quinn QA", "Cam Comms"]


class Console:
    def __init__(self):
        self.lines: list[str] = []

    def info(self, text):
        self.lines.append(text)

    def warn(self, text):
        self.lines.append(f"WARN {text}")


@pytest.fixture
def record(tmp_path) -> IncidentRecord:
    record = IncidentRecord.create(
        tmp_path,
        "INC-PEOPLE-1",
        inventory=str(LOCAL),
        environment="local",
        reason="messaging 5xx",
        to_version="v0.9.0",
        authority=AUTHORITY,
    )
    people.start(record, load_roster(LOCAL))
    return record


def _saved(record) -> dict:
    return json.loads((record.path / "incident.json").read_text())


def test_the_record_and_the_reports_show_who_held_which_role(record):
    data = _saved(record)
    validate(data)
    assert [(r["title"], r["name"]) for r in data["people"]["roles"]] == list(
        zip(
            [
                "Rollback Coordinator",
                "Application Engineer",
                "Database Administrator",
                "Infrastructure Engineer",
                "QA Engineer",
                "Communications Lead",
            ],
            NAMES,
            strict=True,
        )
    )
    assert data["people"]["roles"][2] == {
        "role": "database_administrator",
        "title": "Database Administrator",
        "name": "Dee Bee",
        "primary": "+1 555 0102",
        "secondary": "dee.bee@example.com",
    }
    markdown = render_markdown(data)
    assert "## People (Roles and Responsibilities, Appendix B)" in markdown
    assert "| Database Administrator | Dee Bee | +1 555 0102 | dee.bee@example.com | not yet |" in markdown
    assert "Not acknowledged: Dana Ops, Ari App, Dee Bee, Ian Infra, Quinn QA, Cam Comms" in markdown
    html = render_html(data)
    assert "<td>Dee Bee</td>" in html and "People (Roles and Responsibilities" in html


def test_a_record_without_a_roster_has_no_people_section(tmp_path):
    record = IncidentRecord.create(
        tmp_path, "INC-NOBODY", inventory="x", reason="r", to_version="v0.9.0", authority=AUTHORITY
    )
    people.start(record, None)
    assert "people" not in _saved(record)
    assert "## People" not in render_markdown(_saved(record))


def test_the_announcement_names_the_people_as_inert_free_text(record):
    record.data["people"]["roles"][0]["name"] = "{{ lookup('pipe', 'id') }}"
    (step,) = steps_for("announce", record)
    assert step.extravars["roles_text"].startswith(
        "Rollback Coordinator: {{ lookup('pipe', 'id') }} (+1 555 0100); Application Engineer: Ari App (+1 555 0101)"
    )
    contract = yaml.safe_load((PROJECT / "playbooks" / "vars" / "inputs.yml").read_text())
    assert contract["playbook_inputs_spec"]["roles_text"]["type"] == "text"  # free text: published unsafe
    template = (PROJECT / "roles" / "notify" / "templates" / "rollback_started.md.j2").read_text()
    assert "- Roles: {{ c.roles }}" in template
    assert "rollback_free_text.roles_text" in (PROJECT / "playbooks" / "notify.yml").read_text()


def test_an_acknowledgement_is_recorded_once_with_its_time_and_role(record):
    ack, added = people.acknowledge(record.path, "  dee   bee ", at="2026-12-02T16:05:00Z")
    assert added and ack == {"name": "dee bee", "at": "2026-12-02T16:05:00Z", "roles": ["database_administrator"]}
    again, added = people.acknowledge(record.path, "Dee Bee", at="2026-12-02T16:09:00Z")
    assert not added and again["at"] == "2026-12-02T16:05:00Z"
    stranger, _ = people.acknowledge(record.path, "Visiting Vendor", at="2026-12-02T16:06:00Z")
    assert stranger["roles"] == []
    data = _saved(record)
    validate(data)
    assert [a["name"] for a in data["people"]["acknowledgements"]] == ["dee bee", "Visiting Vendor"]
    state = people.summary(data)
    assert state["missing"] == ["Dana Ops", "Ari App", "Ian Infra", "Quinn QA", "Cam Comms"]
    assert state["last_at"] == "2026-12-02T16:06:00Z"


def test_the_time_to_the_last_acknowledgement_counts_from_the_announcement(record):
    record.data["phases"][1].update(name="announce", status="ok", ended_at="2026-12-02T16:00:00Z")
    record.save()
    for minute, name in enumerate(NAMES, 1):
        people.acknowledge(record.path, name, at=f"2026-12-02T16:0{minute}:30Z")
    data = _saved(record)
    state = people.summary(data)
    assert state["missing"] == [] and state["seconds_to_last"] == 390.0 and state["reference"] == "the announcement"
    markdown = render_markdown(data)
    assert "Time to the last acknowledgement: 6 min 30 s after the announcement" in markdown
    assert "Not acknowledged: nobody (everyone in the roster acknowledged)" in markdown


def test_a_running_rollback_saving_its_record_keeps_the_acknowledgements_made_meanwhile(record):
    people.acknowledge(record.path, "Ari App")  # another process: `record` (in memory) does not know it
    record.data["reason"] = "messaging 5xx (updated)"
    record.save()
    data = _saved(record)
    assert [a["name"] for a in data["people"]["acknowledgements"]] == ["Ari App"]
    assert data["reason"] == "messaging 5xx (updated)"


def _ack(folder: str, name: str) -> None:
    people.acknowledge(folder, name)


def test_concurrent_acknowledgements_are_all_kept(record):
    context = multiprocessing.get_context("fork")
    names = [f"Person {i}" for i in range(12)]
    processes = [context.Process(target=_ack, args=(str(record.path), name)) for name in names]
    for process in processes:
        process.start()
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    assert sorted(a["name"] for a in _saved(record)["people"]["acknowledgements"]) == sorted(names)
    assert not list(record.path.glob(".incident.json.*.tmp"))


def test_the_wait_ends_when_everyone_acknowledged(record):
    console = Console()

    def acknowledge_all():
        time.sleep(0.3)
        for name in NAMES:
            people.acknowledge(record.path, name)

    thread = threading.Thread(target=acknowledge_all)
    thread.start()
    result = people.wait_for_acknowledgements(record, 20, console, poll=0.1)
    thread.join()
    assert result == "all_acknowledged"
    wait = _saved(record)["people"]["ack_wait"]
    assert wait["result"] == "all_acknowledged" and wait["missing"] == [] and wait["ended_at"]
    assert console.lines[0].startswith("waiting up to 20s for acknowledgements from Dana Ops, Ari App")


def test_the_wait_times_out_naming_who_did_not_acknowledge_and_the_rollback_goes_on(record):
    console = Console()
    people.acknowledge(record.path, "Dana Ops")
    started = time.monotonic()
    assert people.wait_for_acknowledgements(record, 0.5, console, poll=0.1) == "timed_out"
    assert time.monotonic() - started < 5
    wait = _saved(record)["people"]["ack_wait"]
    assert wait["missing"] == NAMES[1:]
    assert console.lines[-1] == (
        "WARN acknowledgements: timed out; not acknowledged: Ari App, Dee Bee, Ian Infra, "
        "Quinn QA, Cam Comms; the rollback goes on"
    )
    assert "Wait for acknowledgements (--ack-timeout 0.5s): timed out" in render_markdown(_saved(record))


def test_the_waiter_waits_only_after_the_announcement_of_a_standard_run_with_a_roster(record, monkeypatch):
    calls = []
    monkeypatch.setattr(people, "wait_for_acknowledgements", lambda *a, **k: calls.append(a[1]))
    assert people.waiter(0) is None
    after = people.waiter(30)
    after("preflight", record)
    record.data["mode"] = "check"
    after("announce", record)
    record.data["mode"] = "run"
    record.data["procedure"] = "emergency"
    after("announce", record)
    record.data["procedure"] = "standard"
    after("announce", record)
    assert calls == [30]


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "3601", "soon", ""])
def test_a_bad_ack_timeout_is_a_usage_error(value):
    with pytest.raises(UsageError, match="--ack-timeout"):
        people.check_ack_timeout(value)


def test_ack_on_the_command_line(record, capsys):
    base = str(record.path.parent)
    assert main(["ack", "INC-PEOPLE-1", "--as", "Quinn QA", "--incidents-dir", base]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "Quinn QA (qa_engineer) acknowledged at" in out
    assert "not acknowledged yet: Dana Ops, Ari App, Dee Bee, Ian Infra, Cam Comms" in out
    assert main(["ack", "INC-PEOPLE-1", "--as", "quinn qa", "--incidents-dir", base]) == ExitCode.OK
    assert "had already acknowledged" in capsys.readouterr().out
    assert main(["ack", "INC-NONE", "--as", "Quinn QA", "--incidents-dir", base]) == ExitCode.USAGE
    assert "no incident record 'INC-NONE'" in capsys.readouterr().err
    assert main(["ack", "INC-PEOPLE-1", "--as", "\u202eevil", "--incidents-dir", base]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "--as:" in err and "Traceback" not in err


def _inventory(tmp_path: Path, roster: dict) -> Path:
    inventory = tmp_path / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text((LOCAL / "hosts.yml").read_text())
    (inventory / "group_vars" / "all" / "roster.yml").write_text(yaml.safe_dump({"rollback_roster": roster}))
    return inventory


def _roster() -> dict:
    return yaml.safe_load((LOCAL / "group_vars" / "all" / "roster.yml").read_text())["rollback_roster"]


def test_run_refuses_a_decider_the_roster_does_not_list_before_anything_is_made(tmp_path):
    roster = {**_roster(), "decision_authority": [{"name": "Dana Ops", "role": "lead-devops-engineer"}]}
    inventory = _inventory(tmp_path, roster)
    incidents = tmp_path / "incidents"
    with pytest.raises(AuthorityRefused, match="Mallory is not in the roster's decision authority"):
        run_rollback(
            inventory=str(inventory),
            to_version="v0.9.0",
            reason="5xx",
            decided_by="Mallory",
            role="lead-devops-engineer",
            incidents=str(incidents),
            project=PROJECT,
        )
    assert not incidents.exists()


def test_run_with_a_bad_roster_is_a_usage_error_without_a_traceback(tmp_path, capsys):
    roster = _roster()
    roster["roles"].append(dict(roster["roles"][0]))
    inventory = _inventory(tmp_path, roster)
    code = main(
        [
            "run",
            "standard",
            "-i",
            str(inventory),
            "--to",
            "v0.9.0",
            "--reason",
            "5xx",
            "--decided-by",
            "Dana",
            "--role",
            "cto",
            "--incidents-dir",
            str(tmp_path / "incidents"),
        ]
    )
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert "duplicate: the Rollback Coordinator is already given at rollback_roster.roles[0]" in err
    assert "Traceback" not in err


def test_concurrent_acknowledgements_from_threads_are_all_kept(record):
    names = [f"Thread {i}" for i in range(10)]
    threads = [threading.Thread(target=people.acknowledge, args=(record.path, name)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(a["name"] for a in _saved(record)["people"]["acknowledgements"]) == sorted(names)


def test_names_are_escaped_in_both_reports(record):
    record.data["people"]["roles"][1]["name"] = "<script>alert(1)</script> | *bold*"
    record.save()
    data = _saved(record)
    html = render_html(data)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    row = next(line for line in render_markdown(data).splitlines() if line.startswith("| Application Engineer"))
    assert row.count(" | ") == 4  # the name's pipe does not open a column
    assert "<script>" not in row
