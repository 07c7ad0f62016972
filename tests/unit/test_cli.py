"""The command line: one module per sub-command, and the exit codes every --help lists from one enum."""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rollbackctl import errors
from rollbackctl.cli import COMMANDS, build_parser, main
from rollbackctl.cli.common import exit_codes_epilog
from rollbackctl.errors import ExitCode, RollbackctlError

SRC = Path(__file__).resolve().parents[2] / "src"


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_the_exit_codes_are_the_plan_of_the_toolkit():
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0, "ERROR": 1, "USAGE": 2, "PHASE_FAILED": 3, "REFUSED": 4, "LOCKED": 5, "TRIGGER_FIRED": 6,
        "METRICS_UNREADABLE": 7, "INTERRUPTED": 130}
    assert all(code.description for code in ExitCode)


def test_every_sub_command_has_its_module_and_its_exit_codes():
    parsers = _subparsers()
    assert sorted(parsers) == sorted(["decide", "triggers", "run", "resume", "ack", "rehearse", "report", "sandbox"])
    for command in COMMANDS:
        name = command.__name__.rsplit(".", 1)[1]
        defaults = parsers[name]._defaults
        assert defaults["func"] is command.run
        assert defaults["exit_codes"] == command.EXIT_CODES
        assert all(isinstance(code, ExitCode) for code in command.EXIT_CODES)
        assert ExitCode.OK in command.EXIT_CODES


@pytest.mark.parametrize("name", ["decide", "triggers", "run", "resume", "ack", "rehearse", "report", "sandbox"])
def test_every_help_ends_with_the_exit_codes_generated_from_the_enum(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    codes = _subparsers()[name]._defaults["exit_codes"]
    assert out.endswith(exit_codes_epilog(codes))
    listed = [int(n) for n in re.findall(r"^  (\d+)  ", out[out.rindex("exit codes:"):], re.MULTILINE)]
    assert listed == sorted(int(code) for code in codes)


def test_the_main_help_lists_every_exit_code(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for code in ExitCode:
        assert f"\n  {int(code)}  {code.description}" in out


def test_every_exception_is_a_rollbackctl_error_with_an_exit_code():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, Exception)]
    assert len(classes) > 10
    for cls in classes:
        assert issubclass(cls, RollbackctlError), cls
        assert isinstance(cls.exit_code, ExitCode), cls


def test_no_module_of_the_wrapper_defines_its_own_exception():
    exceptions = {name for name, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, BaseException)}
    exceptions |= {"Exception", "BaseException", "ValueError", "RuntimeError", "OSError"}
    for path in (SRC / "rollbackctl").rglob("*.py"):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(base, "id", getattr(base, "attr", "")) for base in node.bases}
                assert not bases & exceptions, f"{path.name}: class {node.name} belongs in errors.py"


def test_python_dash_m_runs_the_command_line():
    proc = subprocess.run([sys.executable, "-m", "rollbackctl.cli", "decide", "--issue-type", "data", "--severity",
                           "critical"], capture_output=True, text=True, env={"PYTHONPATH": str(SRC)}, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "IMMEDIATE ROLLBACK" in proc.stdout


def test_an_error_prints_its_message_and_returns_its_exit_code(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("ROLLBACKCTL_INCIDENTS_DIR", str(tmp_path))
    (tmp_path / "BROKEN").mkdir()
    (tmp_path / "BROKEN" / "incident.json").write_text("{not json")
    assert main(["resume", "BROKEN"]) == ExitCode.ERROR
    assert "cannot read the incident record" in capsys.readouterr().err


def test_zero_downtime_with_a_database_restore_is_a_usage_error_before_anything(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("ROLLBACKCTL_INCIDENTS_DIR", str(tmp_path / "incidents"))
    monkeypatch.setenv("ROLLBACKCTL_STATE_DIR", str(tmp_path / "state"))
    code = main(["run", "standard", "-i", "inventories/local", "--to", "v0.9.0", "--reason", "errors",
                 "--decided-by", "Dana", "--role", "lead_devops_engineer", "--database", "yes", "--zero-downtime"])
    assert code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "--zero-downtime with --database yes" in err and "maintenance window" in err and "Traceback" not in err
    assert not (tmp_path / "incidents").exists() and not (tmp_path / "state").exists()
