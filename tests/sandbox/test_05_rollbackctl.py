"""rollbackctl on the real sandbox, after test_04 (which ends on a v1.0.0 rebuilt from git, v0.9.0 marked bad).

First the operator's way back to the stable release with the wrapper (a code-only rollback: the database
already has the schema v0.9.0 needs). Then a bad day: no authority, a second rollback while one
holds the lock, a run killed mid-phase and resumed; then the plan's Rollback Testing (`rehearse`), the
record written by the callback under plain ansible-playbook, and secrets in every file the runs wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rollbackctl.paths import INCIDENTS_ENV, STATE_ENV
from rollbackctl.record import validate
from rollbackctl.runner import run_playbook

from ..conftest import DISTINCTIVE_DB_PASSWORD, files_holding

pytestmark = pytest.mark.sandbox

AUTHORITY = ["--decided-by", "Dana", "--role", "lead-devops-engineer"]


def rollbackctl(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rollbackctl.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy())


def _incidents() -> Path:
    return Path(os.environ[INCIDENTS_ENV])


def _record(incident_id: str) -> dict:
    return json.loads((_incidents() / incident_id / "incident.json").read_text())


def _platform(sandbox) -> dict:
    root = sandbox.directory / "app" / "opt" / "chatbot-platform"
    return {"current": os.readlink(root / "current"), "health": sandbox.health().get("version"),
            "maintenance": sorted(p.name for p in (sandbox.directory / "nginx" / "conf.d").glob("chatbot-maint*"))}


def _listing(*roots: Path) -> set[str]:
    return {str(p) for root in roots if root.exists() for p in root.rglob("*")}


def _run(*extra: str) -> list[str]:
    return ["run", "standard", "-i", "inventories/local", "--to", "v0.9.0", "--reason", "messaging 5xx", *extra]


@pytest.fixture(scope="module", autouse=True)
def in_project(project):
    cwd = os.getcwd()
    os.chdir(project)
    yield
    os.chdir(cwd)


@pytest.fixture(scope="module", autouse=True)
def stable(sandbox):
    """v0.9.0 live: an operator clears its bad mark (test_04 rolled forward from it) and rolls back to it."""
    root = sandbox.directory / "app" / "opt" / "chatbot-platform"
    entry = {"event": "marked_good", "version": "v0.9.0", "at": "2026-01-01T00:00:00Z", "actor": "pytest"}
    with (root / "releases" / "manifest.jsonl").open("a") as handle:
        handle.write(json.dumps(entry) + "\n")
    (root / "releases" / "v0.9.0" / "BAD_RELEASE").unlink(missing_ok=True)
    result = rollbackctl(*_run(*AUTHORITY, "--incident-id", "INC-BACK-TO-STABLE"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return _record("INC-BACK-TO-STABLE")


def test_code_only_rollback_skips_the_database_and_says_why(stable, sandbox):
    validate(stable)
    assert _platform(sandbox) == {"current": "releases/v0.9.0", "health": "0.9.0", "maintenance": []}
    status = {p["name"]: p for p in stable["phases"]}
    assert stable["outcome"]["status"] == "succeeded" and stable["from_version"] == "v1.0.0"
    assert status["db_restore"]["status"] == "skipped" and "not necessary" in status["db_restore"]["note"]
    assert stable["database"]["restore"] is False and stable["pre_restore_snapshot"] is None
    assert status["app_rollback"]["hosts_changed"] == ["sandbox-app"]
    item = next(c for c in stable["checklist"] if c["item"] == "Database rolled back (if necessary)")
    assert item["done"] and "not necessary" in item["note"]


def test_refused_authority_changes_nothing(stable, sandbox):
    before, files = _platform(sandbox), _listing(_incidents(), Path(os.environ[STATE_ENV]))
    for authority in (["--decided-by", "Sam", "--role", "engineer"],
                      ["--decided-by", "Sam", "--role", "senior-engineer"],
                      ["--decided-by", "Sam", "--role", "senior-engineer", "--consensus", "sam:senior-engineer"]):
        result = rollbackctl(*_run(*authority))
        assert result.returncode == 4, result.stderr
        assert "refused" in result.stderr and "Sam" in result.stderr
    assert _platform(sandbox) == before
    assert _listing(_incidents(), Path(os.environ[STATE_ENV])) == files


def test_unknown_version_stops_in_preflight_with_a_record_and_changes_nothing(sandbox):
    before = _platform(sandbox)
    result = rollbackctl("run", "standard", "-i", "inventories/local", "--to", "v0.8.7", "--reason", "x",
                         *AUTHORITY, "--incident-id", "INC-UNKNOWN-VERSION")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "v0.8.7" in result.stdout + result.stderr
    record = _record("INC-UNKNOWN-VERSION")
    validate(record)
    assert record["outcome"]["status"] == "failed" and "nothing was changed" in record["outcome"]["next_step"]
    assert [p["status"] for p in record["phases"]][:2] == ["failed", "pending"]
    assert _platform(sandbox) == before


def test_emergency_procedure_says_it_is_not_available(sandbox):
    result = rollbackctl("run", "emergency", "-i", "inventories/local", "--to", "v0.9.0", "--reason", "x", *AUTHORITY)
    assert result.returncode == 2
    assert "emergency procedure" in result.stderr and "not part of this release" in result.stderr


def test_second_rollback_is_refused_while_one_holds_the_lock(sandbox, project):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from rollbackctl.orchestrator import lock_for;"
         "from rollbackctl.paths import state_dir;"
         "lock_for(state_dir(), Path(sys.argv[1])).acquire('INC-HOLDER-1'); print('held', flush=True); time.sleep(120)",
         # Another spelling of the inventory the run uses (inventories/local): the same platform, the same lock.
         str(project / "inventories" / "local" / "hosts.yml")], stdout=subprocess.PIPE, text=True,
        env=os.environ.copy())
    try:
        assert holder.stdout.readline().strip() == "held"
        before = _platform(sandbox)
        result = rollbackctl(*_run(*AUTHORITY, "--incident-id", "INC-SECOND"))
        assert result.returncode == 5, result.stderr
        assert "INC-HOLDER-1" in result.stderr and f"pid {holder.pid}" in result.stderr
        assert not (_incidents() / "INC-SECOND").exists()
        assert _platform(sandbox) == before
    finally:
        holder.kill()
        holder.wait()
    stale = rollbackctl(*_run(*AUTHORITY, "--incident-id", "INC-SECOND"))
    assert stale.returncode == 5 and "stale" in stale.stderr and "--break-lock" in stale.stderr
    assert not (_incidents() / "INC-SECOND").exists()


def _wait_for_phase(incident_id: str, phase: str, run: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.poll() is not None:
            pytest.fail(f"the run ended (exit {run.returncode}) before phase {phase}: {log.read_text()[-2000:]}")
        try:
            phases = {p["name"]: p["status"] for p in _record(incident_id)["phases"]}
        except (OSError, ValueError):
            phases = {}
        if phases.get(phase) == "running":
            return
        assert "failed" not in phases.values(), phases
        time.sleep(0.5)
    pytest.fail(f"phase {phase} never started")


def test_run_killed_mid_phase_resumes_into_one_coherent_record(sandbox, project, tmp_path):
    run_playbook(project=project, playbook="deploy.yml", inventory=sandbox.inventory, runs_dir=sandbox.runs_dir,
                 extravars={"deploy_version": "v1.0.0"})
    assert sandbox.health()["version"] == "1.0.0"
    incident = "INC-KILLED-1"
    log = tmp_path / "run.log"
    with log.open("w") as output:  # --break-lock: the holder killed in the test above left its lock stale
        run = subprocess.Popen([sys.executable, "-m", "rollbackctl.cli",
                                *_run(*AUTHORITY, "--incident-id", incident, "--break-lock")],
                               stdout=output, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ.copy())
    try:
        _wait_for_phase(incident, "db_restore", run, log)
        time.sleep(2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)  # the wrapper and its ansible-playbook: a lost session
        run.wait()
    assert "broke the stale lock" in log.read_text() and "INC-HOLDER-1" in log.read_text()
    assert {p["name"]: p["status"] for p in _record(incident)["phases"]}["db_restore"] == "running"
    assert _platform(sandbox)["maintenance"], "killed mid-rollback: maintenance mode stays on"

    again = rollbackctl(*_run(*AUTHORITY, "--incident-id", "INC-AFTER-KILL"))
    assert again.returncode == 5
    assert "stale" in again.stderr and incident in again.stderr and "resume" in again.stderr

    resumed = rollbackctl("resume", incident)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    record = _record(incident)
    validate(record)
    assert record["outcome"]["status"] == "succeeded"
    assert [p["status"] for p in record["phases"]] == ["ok"] * len(record["phases"])
    restore = next(p for p in record["phases"] if p["name"] == "db_restore")
    assert [a["status"] for a in restore["attempts"]] == ["interrupted", "ok"]
    assert "pid" in restore["attempts"][0]["error"]
    assert all(len(p["attempts"]) == 1 for p in record["phases"] if p["name"] != "db_restore")
    communicated = ("Rollback decision made and communicated", "Stakeholders notified")
    assert all(item["done"] and item["at"] for item in record["checklist"] if item["item"] not in communicated)
    for item in (i for i in record["checklist"] if i["item"] in communicated):  # the sandbox has no channel
        assert not item["done"] and "nobody was notified" in item["note"]
    assert record["pre_restore_snapshot"] and record["backup"]["sha256"]
    assert _platform(sandbox) == {"current": "releases/v0.9.0", "health": "0.9.0", "maintenance": []}
    assert sorted(p.name for p in _incidents().iterdir() if p.name.startswith("INC-KILLED")) == [incident]
    assert not (_incidents() / "INC-AFTER-KILL").exists()


@pytest.fixture(scope="module")
def rehearsal(sandbox):
    result = rollbackctl("rehearse", "--incident-id", "REHEARSAL-1", "--decided-by", "Dana",
                         "--role", "lead-devops-engineer")
    return result


def test_rehearse_returns_the_platform_to_its_previous_state(rehearsal, sandbox):
    assert rehearsal.returncode == 0, rehearsal.stdout[-3000:] + rehearsal.stderr[-3000:]
    record = _record("REHEARSAL-1")
    validate(record)
    assert record["kind"] == "rehearsal" and record["outcome"]["status"] == "succeeded"
    assert record["rehearsal"]["returned_to_previous_state"] is True, record["rehearsal"]["differences"]
    assert record["rehearsal"]["before"]["releases"] == {"sandbox-app": "v0.9.0"}
    assert _platform(sandbox) == {"current": "releases/v0.9.0", "health": "0.9.0", "maintenance": []}


def test_rehearsal_record_is_complete(rehearsal):
    record = _record("REHEARSAL-1")
    fired = {t["name"] for t in record["triggers"]["fired"]}
    assert {"api_5xx", "messaging_failing"} <= fired
    assert record["decision"]["row"] == 1 and record["decision"]["decision"] == "immediate_rollback"
    assert record["authority"]["basis"] == "primary"
    # the inventory's roster: who held which of the plan's six roles
    assert len(record["people"]["roles"]) == 6 and all(role["name"] for role in record["people"]["roles"])
    assert (record["from_version"], record["to_version"]) == ("v1.0.0", "v0.9.0")
    assert record["database"]["restore"] is True
    for phase in record["phases"]:
        assert phase["status"] == "ok", phase
        assert phase["started_at"] and phase["ended_at"] and phase["duration_seconds"] is not None
        if phase["estimate"]:
            assert phase["within_estimate"] is True
    assert all(item["done"] and item["at"] for item in record["checklist"])
    sent = {(n["channel"], n["event"]) for n in record["notifications"] if n["status"] == "sent"}
    assert {("webhook", "rollback_started"), ("statuspage", "rollback_completed")} <= sent
    checks = record["verifications"]
    assert {c["phase"] for c in checks} >= {"verify_app", "verify_db", "maintenance_off", "post_verify"}
    assert all(c["verdict"] in ("pass", "skip") for c in checks)
    assert any(c["threshold"] is not None and c["value"] is not None for c in checks)
    assert record["pre_restore_snapshot"]["manifest"].endswith(".manifest.json")
    logs = {entry["source"] for entry in record["logs"]}
    assert {"pm2-app-err", "pm2-app-out", "nginx-access"} <= logs
    folder = _incidents() / "REHEARSAL-1"
    assert "TypeError" in (folder / "logs" / "sandbox-app" / "pm2-app-err.log").read_text(), \
        "the failed release's stack traces are collected"
    assert (folder / "events.jsonl").stat().st_size > 0
    assert record["follow_up"] == {"root_cause": None, "tickets": [], "retry_plan": None, "notes": None}
    report = (folder / "incident.md").read_text()
    assert "Appendix C" in report and "15-30 min" in report


def test_report_renders_the_record(rehearsal, tmp_path):
    markdown = rollbackctl("report", "REHEARSAL-1")
    assert markdown.returncode == 0 and "REHEARSAL-1" in markdown.stdout
    page = tmp_path / "r.html"
    html = rollbackctl("report", "REHEARSAL-1", "--format", "html", "--output", str(page))
    assert html.returncode == 0, html.stderr
    assert "<svg" in page.read_text()
    assert rollbackctl("report", "NO-SUCH-INCIDENT").returncode == 2


def test_callback_writes_the_record_under_plain_ansible_playbook(rehearsal, sandbox, project):
    """rollback.yml by hand (here: the platform already runs the target, so it verifies only)."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(project / "ansible.cfg")}
    result = subprocess.run(
        ["ansible-playbook", "-i", str(sandbox.inventory), str(project / "playbooks" / "rollback.yml"),
         "-e", "rollback_to=v0.9.0", "-e", "incident_id=INC-BY-HAND", "-e", "reason=checking",
         "-e", "decided_by=Dana", "-e", "decided_by_role=cto"],
        capture_output=True, text=True, env=env, timeout=600, cwd=project)
    assert result.returncode == 0, result.stdout[-3000:]
    record = _record("INC-BY-HAND")
    validate(record)
    assert record["writer"] == "callback" and record["outcome"]["status"] == "nothing_to_do"
    assert record["authority"]["basis"] == "tertiary"
    assert record["people"]["roles"][0]["title"] == "Rollback Coordinator"  # the inventory's roster
    status = {p["name"]: p["status"] for p in record["phases"]}
    assert status["announce"] == status["maintenance_on"] == "skipped"
    assert status["post_verify"] == status["verify_app"] == "ok"
    assert status["collect_logs"] == "skipped"  # it writes files: the wrapper runs it, rollback.yml does not
    assert any(c["phase"] == "post_verify" for c in record["verifications"])
    assert (_incidents() / "INC-BY-HAND" / "incident.md").exists()


def test_the_database_password_appears_in_no_file_the_runs_wrote(rehearsal, sandbox):
    allowed = {sandbox.directory / "secrets" / "db-password",
               sandbox.directory / "app" / "opt" / "chatbot-platform" / "shared" / "app.env",
               sandbox.directory / "db" / "ferretdb.env"}
    roots = (_incidents(), Path(os.environ[STATE_ENV]), sandbox.runs_dir, sandbox.directory)
    assert files_holding(DISTINCTIVE_DB_PASSWORD, roots, allowed) == []
    assert any(_incidents().rglob("events.jsonl"))
