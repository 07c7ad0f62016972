"""collect_logs.yml on the real sandbox: the end of every log of the app host, redacted, in the incident's folder.

Two module runs (chatbot.rollback.log_tail on the app host, chatbot.rollback.incident_logs on the control node)
instead of a stat, a tail and a copy per file. A secret written into the app's error log never reaches the folder;
a missing log is left out; check mode writes nothing; a file already holding what would be written is left alone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.sandbox

SECRET = "Kx9-collect-logs-distinctive"


def _collect(sandbox, folder, check=False, **extravars):
    return sandbox._run("collect_logs.yml", extravars={"incident_logs_dir": str(folder), **extravars}, check=check,
                        raise_on_failure=False)


def _actions(result) -> set[str]:
    """The actions of the tasks that ran (from the runner's job events)."""
    found = set()
    for path in (Path(result.artifacts_dir) / "job_events").glob("*.json"):
        event = json.loads(path.read_text())
        if event.get("event") in ("runner_on_ok", "runner_on_failed"):
            found.add(event["event_data"].get("task_action"))
    return found


def test_the_logs_arrive_redacted_in_two_module_runs(sandbox, tmp_path):
    error_log = sandbox.directory / "app" / "opt" / "chatbot-platform" / "shared" / "logs" / "app-err.log"
    with error_log.open("a") as handle:
        handle.write(f"2026-12-02T06:00:00: MongoServerError at mongodb://chatbot:{SECRET}@127.0.0.1/db\n")
    folder = tmp_path / "logs"

    dry = _collect(sandbox, folder, check=True)
    assert dry.ok, dry.failures
    assert not folder.exists(), "check mode wrote nothing"

    result = _collect(sandbox, folder, log_lines=50)
    assert result.ok, result.failures
    written = {p.name for p in (folder / "sandbox-app").iterdir()}
    assert {"pm2-app-out.log", "pm2-app-err.log", "pm2-daemon.log", "nginx-access.log"} <= written, written
    err = (folder / "sandbox-app" / "pm2-app-err.log").read_text()
    assert "MongoServerError at mongodb://chatbot:********@127.0.0.1/db" in err.splitlines()[-1]
    assert len(err.splitlines()) <= 50
    for path in (folder / "sandbox-app").iterdir():
        assert SECRET not in path.read_text(), f"{path.name} holds the secret"
        assert oct(path.stat().st_mode & 0o777) == "0o640"
    assert oct((folder / "sandbox-app").stat().st_mode & 0o777) == "0o750"
    # two module runs do the work: the tail on the app host and the write on the control node
    actions = _actions(result)
    assert {"chatbot.rollback.log_tail", "chatbot.rollback.incident_logs"} <= actions, actions
    assert not actions & {"ansible.builtin.stat", "ansible.builtin.command", "ansible.builtin.copy"}, actions

    # a log file that already holds what would be written is left alone (pm2's daemon log does not move here)
    daemon = folder / "sandbox-app" / "pm2-daemon.log"
    os.utime(daemon, ns=(1, 1))
    again = _collect(sandbox, folder, log_lines=50)
    assert again.ok, again.failures
    assert daemon.stat().st_mtime_ns == 1


def test_a_relative_or_missing_destination_is_refused_before_anything(sandbox, tmp_path):
    result = _collect(sandbox, "relative/logs")
    assert not result.ok
    assert any("incident_logs_dir must be an absolute path" in f["msg"] for f in result.failures), result.failures
    assert not (sandbox.project / "relative").exists()
