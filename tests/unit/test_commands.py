"""rollbackctl run/resume/rehearse: what is refused before anything runs, and the progress display."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rollbackctl import phases
from rollbackctl.cli import main
from rollbackctl.orchestrator import lock_for
from rollbackctl.paths import state_dir
from rollbackctl.progress import Progress
from rollbackctl.project import find_project
from rollbackctl.rehearsal import compare_fingerprints

AUTHORITY = ["--decided-by", "Dana", "--role", "lead-devops-engineer"]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("ROLLBACKCTL_INCIDENTS_DIR", str(tmp_path / "incidents"))
    monkeypatch.setenv("ROLLBACKCTL_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def _nothing_written(tmp_path) -> bool:
    return not (tmp_path / "incidents").exists() and not (tmp_path / "state").exists()


@pytest.mark.parametrize("version", ["0.9.0", "v1", "v0.9.0\n", "v0.9.0; rm -rf /", "../v0.9.0", ""])
def test_malformed_version_is_refused_before_anything(version, isolated, capsys):
    code = main(["run", "standard", "-i", "inventories/local", "--to", version, "--reason", "r", *AUTHORITY])
    assert code == 2
    assert "malformed" in capsys.readouterr().err
    assert _nothing_written(isolated)


def test_unknown_inventory_is_refused_before_anything(isolated, capsys):
    code = main(["run", "standard", "-i", "inventories/nowhere", "--to", "v0.9.0", "--reason", "r", *AUTHORITY])
    assert code == 2
    assert "inventories/nowhere" in capsys.readouterr().err
    assert _nothing_written(isolated)


def test_no_authority_is_refused_before_the_inventory_is_even_read(isolated, capsys):
    code = main(["run", "standard", "-i", "inventories/nowhere", "--to", "v0.9.0", "--reason", "r",
                 "--decided-by", "Sam", "--role", "qa-engineer"])
    assert code == 4
    assert "refused" in capsys.readouterr().err
    assert _nothing_written(isolated)


def test_matrix_row_options_go_together(isolated, capsys):
    code = main(["run", "standard", "-i", "inventories/local", "--to", "v0.9.0", "--reason", "r", *AUTHORITY,
                 "--issue-type", "functional"])
    assert code == 2 and "--severity" in capsys.readouterr().err
    assert _nothing_written(isolated)


@pytest.mark.parametrize("incident", ["NO-SUCH-INCIDENT", "../etc", "a/b"])
def test_resume_of_an_unknown_or_malformed_incident(incident, capsys):
    assert main(["resume", incident]) == 2
    assert incident in capsys.readouterr().err


def test_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for code in ("0 ", "2 ", "3 ", "4 ", "5 ", "130"):
        assert f"\n  {code}" in out


def test_progress_prints_plain_lines_off_a_terminal():
    stream = io.StringIO()
    progress = Progress(stream, live=False)
    phase = phases.get("app_rollback")
    progress.phase_started(phase)
    progress.phase_finished(phase, "ok", "changed=3")
    progress.phase_skipped(phases.get("db_restore"), "not necessary")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "phase app_rollback: started (Roll back the application code; Appendix C: 10-15 min)"
    assert lines[1].startswith("phase app_rollback: ok in 00:0") and lines[1].endswith("changed=3")
    assert lines[2] == "phase db_restore: skipped - not necessary"
    assert "\r" not in stream.getvalue()


def test_progress_redraws_one_line_on_a_terminal():
    stream = io.StringIO()
    progress = Progress(stream, live=True)
    phase = phases.get("verify_app")
    progress.phase_started(phase)
    progress.task("Check the platform through its API")
    progress.phase_finished(phase, "ok")
    text = stream.getvalue()
    assert "\r\033[K" in text and "Appendix C: 10 min" in text
    assert text.endswith("phase verify_app: ok in 00:00 (Appendix C: 10 min)\n")


def test_rehearsal_comparison_names_every_difference():
    before = {"releases": {"app1": "v0.9.0"}, "database": {"users": "a", "messages": "b"}}
    same = {"releases": {"app1": "v0.9.0"}, "database": {"users": "a", "messages": "b"}}
    assert compare_fingerprints(before, same, same) == []
    after = {"releases": {"app1": "v1.0.0"}, "database": {"users": "a", "messages": "c", "message_reactions": "d"}}
    differences = compare_fingerprints(before, after, after)
    assert any("app1: runs v1.0.0" in d for d in differences)
    assert any("collection messages" in d for d in differences)
    assert any("message_reactions" in d for d in differences)


def test_rehearsal_comparison_leaves_the_live_sessions_a_restore_keeps_to_the_restore():
    before = {"releases": {"app1": "v0.9.0"}, "database": {"users": "a", "sessions": "s0"}}
    kept = {"releases": {"app1": "v0.9.0"}, "database": {"users": "a", "sessions": "s0+logins-since-the-backup"}}
    assert compare_fingerprints(before, kept, kept) == []
    gone = {"releases": {"app1": "v0.9.0"}, "database": {"users": "a"}}
    assert any("collection sessions" in d for d in compare_fingerprints(before, gone, gone))


# -- the lock, end to end: refused before anything runs -----------------------------------------------

HOLDER = (
    "import sys; from pathlib import Path; from rollbackctl.orchestrator import lock_for;"
    "lock_for(Path(sys.argv[1]), Path(sys.argv[2])).acquire('INC-HOLDER'); print('held', flush=True);"
    "sys.stdin.read()"
)


def _run_args(incident: str) -> list[str]:
    return ["run", "standard", "-i", "inventories/local", "--to", "v0.9.0", "--reason", "r", *AUTHORITY,
            "--incident-id", incident]


def test_a_second_run_is_refused_naming_the_holder_then_the_dead_holder_is_stale(isolated, capsys):
    inventory = find_project() / "inventories" / "local"
    src = Path(__file__).resolve().parents[2] / "src"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(isolated / "state"), str(inventory)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(src)})
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(_run_args("INC-SECOND")) == 5
        err = capsys.readouterr().err
        assert "INC-HOLDER" in err and f"pid {holder.pid}" in err and "never broken" in err
    finally:
        holder.kill()
        holder.wait(timeout=10)
        holder.stdin.close()
        holder.stdout.close()
    assert main(_run_args("INC-SECOND")) == 5
    err = capsys.readouterr().err
    assert "stale" in err and "INC-HOLDER" in err and "--break-lock" in err and "rollbackctl resume INC-HOLDER" in err
    assert not (isolated / "incidents" / "INC-SECOND").exists()


def test_an_unusable_lock_file_refuses_the_run_naming_the_file(isolated, capsys):
    lock = lock_for(state_dir(), find_project() / "inventories" / "local")
    lock.lock_dir.mkdir(parents=True)
    lock.path.write_text("garbage")
    assert main(_run_args("INC-X")) == 5
    err = capsys.readouterr().err
    assert str(lock.path) in err and "not valid JSON" in err and "--break-lock" in err
    assert lock.path.read_text() == "garbage"
    assert not (isolated / "incidents").exists()
