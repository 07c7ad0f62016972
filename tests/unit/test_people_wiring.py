"""`rollbackctl run` wires people and follow-up in: the roster, the wait for acknowledgements after the
announcement, the retry plan, the tickets. The phases are a stand-in (no playbook runs here)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest

from rollbackctl import people, procedures
from rollbackctl.cli import main
from rollbackctl.errors import ExitCode
from rollbackctl.lock import EnvironmentLock

from .test_tickets import TOKEN, Tracker

PROJECT = Path(__file__).resolve().parents[2]
NAMES = ["Dana Ops", "Ari App", "Dee Bee", "Ian Infra", "Quinn QA", "Cam Comms"]


class StandIn:
    """The orchestrator's place: announce (then the hook), done; `seen` keeps what the run was given."""

    seen: ClassVar[dict] = {}

    def __init__(self, record, ctx, *, inventory, check=False):
        self.record, self.ctx = record, ctx

    def execute(self):
        record = self.record
        record.start_phase("announce")
        record.finish_phase("announce", "ok")
        record.save()
        started = time.monotonic()
        if self.ctx.on_phase_done:
            self.ctx.on_phase_done("announce", record)
        StandIn.seen = {"waited": time.monotonic() - started, "hook": self.ctx.on_phase_done}
        record.data["from_version"] = "v1.0.0"
        record.set_outcome("succeeded", "rolled back")
        record.save()
        return ExitCode.OK


@pytest.fixture
def standin(tmp_path, monkeypatch):
    monkeypatch.setenv("ROLLBACKCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(procedures, "Rollback", StandIn)
    monkeypatch.setattr(procedures, "lock_for", lambda state, inventory: EnvironmentLock(tmp_path / "locks", "unit"))
    return tmp_path / "incidents"


def _run(incidents, *extra):
    return main(
        [
            "run",
            "standard",
            "-i",
            "inventories/local",
            "--to",
            "v0.9.0",
            "--reason",
            "5xx",
            "--decided-by",
            "Dana Ops",
            "--role",
            "lead-devops",
            "--incidents-dir",
            str(incidents),
            "--incident-id",
            "INC-WIRE",
            "--quiet",
            *extra,
        ]
    )


def test_run_records_the_roster_waits_for_the_acknowledgements_and_plans_the_retry(standin, capsys):
    def acknowledge_all():
        folder = standin / "INC-WIRE"
        while not (folder / "incident.json").exists():
            time.sleep(0.05)
        time.sleep(0.5)
        for name in NAMES:
            people.acknowledge(folder, name)

    thread = threading.Thread(target=acknowledge_all)
    thread.start()
    assert _run(standin, "--ack-timeout", "30", "--retry-estimate", "3h") == ExitCode.OK
    thread.join()
    data = json.loads((standin / "INC-WIRE" / "incident.json").read_text())
    assert [r["name"] for r in data["people"]["roles"]] == NAMES
    assert data["people"]["ack_wait"]["result"] == "all_acknowledged"
    assert len(data["people"]["acknowledgements"]) == 6
    assert StandIn.seen["waited"] < 25
    assert data["retry"]["estimate"] == "3h" and data["retry"]["source"] == "operator"
    assert data["follow_up"]["retry_plan"].startswith("Retry of v1.0.0: not before")
    assert "waiting up to 30s for acknowledgements" in capsys.readouterr().out


def test_run_does_not_wait_by_default(standin):
    assert _run(standin) == ExitCode.OK
    assert StandIn.seen["hook"] is None
    data = json.loads((standin / "INC-WIRE" / "incident.json").read_text())
    assert data["people"]["ack_wait"] is None and data["retry"]["source"] == "none"


def test_run_files_the_tickets_after_the_rollback(standin, monkeypatch):
    tracker = Tracker()
    try:
        monkeypatch.setenv("ROLLBACKCTL_TICKETS_TOKEN", TOKEN)
        assert _run(standin, "--tickets-repo", "chatbot/platform", "--tickets-api", tracker.url) == ExitCode.OK
    finally:
        tracker.close()
    data = json.loads((standin / "INC-WIRE" / "incident.json").read_text())
    assert len(tracker.issues) == 1 and tracker.issues[0]["title"] == "Rollback of v1.0.0: 5xx"
    assert data["follow_up"]["tickets"] == [tracker.issues[0]["html_url"]]


def test_run_goes_on_when_the_tracker_is_down(standin, monkeypatch, capsys):
    monkeypatch.setenv("ROLLBACKCTL_TICKETS_TOKEN", TOKEN)
    assert _run(standin, "--tickets-repo", "chatbot/platform", "--tickets-api", "http://127.0.0.1:36099") == ExitCode.OK
    data = json.loads((standin / "INC-WIRE" / "incident.json").read_text())
    assert data["outcome"]["status"] == "succeeded" and data["tickets"]["items"][0]["status"] == "failed"
    assert "rollbackctl: tickets: reason:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ack-timeout", "forever"], "--ack-timeout"),
        (["--ack-timeout=-5"], "--ack-timeout"),
        (["--tickets-repo", "nope"], "--tickets-repo"),
        (["--tickets-api", "ftp://x"], "--tickets-api"),
        (["--tickets-label", "x"], "need --tickets-repo"),
    ],
)
def test_bad_people_options_are_usage_errors(standin, capsys, extra, message):
    assert _run(standin, *extra) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_every_new_option_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for option in (
        "--roster FILE",
        "--ack-timeout SECONDS",
        "--retry-estimate DURATION",
        "--tickets-repo OWNER/NAME",
        "--tickets-api URL",
        "--tickets-label LABEL",
    ):
        assert option in out


def test_resume_of_a_completed_incident_opens_the_tickets_asked_for_once(standin, monkeypatch, capsys):
    assert _run(standin) == ExitCode.OK
    tracker = Tracker()
    try:
        monkeypatch.setenv("ROLLBACKCTL_TICKETS_TOKEN", TOKEN)
        for _ in range(2):
            code = main(
                [
                    "resume",
                    "INC-WIRE",
                    "--incidents-dir",
                    str(standin),
                    "--tickets-repo",
                    "chatbot/platform",
                    "--tickets-api",
                    tracker.url,
                    "--quiet",
                ]
            )
            assert code == ExitCode.OK
    finally:
        tracker.close()
    assert len(tracker.issues) == 1
    data = json.loads((standin / "INC-WIRE" / "incident.json").read_text())
    assert data["follow_up"]["tickets"] == [tracker.issues[0]["html_url"]]
    assert data["tickets"]["items"][0]["status"] == "created"  # the second resume found it: nothing new


def test_the_wait_stops_at_once_on_sigint(tmp_path):
    from rollbackctl.orchestrator import Cancelled
    from rollbackctl.record import IncidentRecord
    from rollbackctl.roster import load_roster

    record = IncidentRecord.create(
        tmp_path,
        "INC-SIGINT",
        inventory="x",
        reason="r",
        to_version="v0.9.0",
        authority={
            "decided_by": "D",
            "role": "cto",
            "basis": "tertiary",
            "consensus": [],
            "approved_by": ["D"],
            "explanation": "x",
        },
    )
    people.start(record, load_roster(PROJECT / "inventories" / "local"))
    with Cancelled() as cancelled:
        cancelled.event.set()
        started = time.monotonic()
        assert people.wait_for_acknowledgements(record, 60, poll=0.1) == "interrupted"
    assert time.monotonic() - started < 5


def test_an_acknowledgement_without_a_roster_is_recorded(tmp_path):
    from rollbackctl.record import IncidentRecord, validate

    record = IncidentRecord.create(
        tmp_path,
        "INC-NOROSTER",
        inventory="x",
        reason="r",
        to_version="v0.9.0",
        authority={
            "decided_by": "D",
            "role": "cto",
            "basis": "tertiary",
            "consensus": [],
            "approved_by": ["D"],
            "explanation": "x",
        },
    )
    people.acknowledge(record.path, "Someone")
    data = json.loads((record.path / "incident.json").read_text())
    validate(data)
    assert data["people"]["roles"] == [] and data["people"]["acknowledgements"][0]["name"] == "Someone"
    assert people.summary(data)["missing"] == []


def test_an_ack_timeout_without_a_roster_says_it_does_not_wait(standin, tmp_path, capsys):
    inventory = tmp_path / "bare"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text((PROJECT / "inventories" / "local" / "hosts.yml").read_text())
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
            str(standin),
            "--quiet",
            "--ack-timeout",
            "30",
        ]
    )
    assert code == ExitCode.OK
    assert "--ack-timeout: the inventory has no rollback_roster" in capsys.readouterr().err
    assert StandIn.seen["waited"] < 5
