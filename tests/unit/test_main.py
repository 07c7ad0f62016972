"""main()'s last-resort handler, the exit codes every --help lists, and the README's exit-code table."""

from __future__ import annotations

import errno
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rollbackctl.cli import COMMANDS, decide, main
from rollbackctl.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]
DECIDE = ["decide", "--issue-type", "data", "--severity", "critical"]


def _raising(exc: BaseException):
    def run(_args):
        raise exc

    return run


@pytest.mark.parametrize(("exc", "code", "words"), [
    (RecursionError("maximum recursion depth exceeded"), ExitCode.USAGE, "nested too deeply"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/nowhere/x.json"), ExitCode.ERROR,
     "/nowhere/x.json: No such file or directory"),
    (PermissionError(errno.EACCES, "Permission denied", "/root/a", None, "/root/b"), ExitCode.ERROR,
     "/root/a -> /root/b: Permission denied"),
    (OSError("disk on fire"), ExitCode.ERROR, "disk on fire"),
    (KeyError("phases"), ExitCode.ERROR, "internal error: KeyError: 'phases' (set ROLLBACKCTL_DEBUG=1"),
    (TypeError("unsupported operand"), ExitCode.ERROR, "internal error: TypeError: unsupported operand"),
    (ValueError("x" * 5000), ExitCode.ERROR, "internal error: ValueError: xxxx"),
    (UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed"), ExitCode.ERROR,
     "internal error: UnicodeEncodeError"),
])
def test_whatever_escapes_a_command_is_a_message_and_an_exit_code(exc, code, words, monkeypatch, capsys):
    monkeypatch.delenv("ROLLBACKCTL_DEBUG", raising=False)
    monkeypatch.setattr(decide, "run", _raising(exc))
    assert main(DECIDE) == code
    err = capsys.readouterr().err
    assert words in err
    assert "Traceback" not in err
    assert len(err) < 1200  # a huge message is cut


def test_debug_shows_the_traceback(monkeypatch, capsys):
    monkeypatch.setenv("ROLLBACKCTL_DEBUG", "1")
    monkeypatch.setattr(decide, "run", _raising(KeyError("x")))
    assert main(DECIDE) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert "Traceback" in err and "internal error: KeyError" in err


def test_a_message_with_undecodable_bytes_is_printed_escaped():
    # argv bytes that are not UTF-8 reach Python as surrogates; printing them must not fail
    proc = subprocess.run([sys.executable, "-m", "rollbackctl", "report", "\udcff"], capture_output=True,
                          env={"PYTHONPATH": str(ROOT / "src"), "ROLLBACKCTL_INCIDENTS_DIR": "/nonexistent"},
                          check=False)
    assert proc.returncode == ExitCode.USAGE
    assert b"Traceback" not in proc.stderr and b"INCIDENT_ID" in proc.stderr


def test_python_dash_m_rollbackctl_runs_the_command_line():
    proc = subprocess.run([sys.executable, "-m", "rollbackctl", *DECIDE], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT / "src")}, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "IMMEDIATE ROLLBACK" in proc.stdout


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.__name__.rsplit(".", 1)[1])
def test_every_command_documents_exit_codes_1_and_2(command):
    assert ExitCode.ERROR in command.EXIT_CODES and ExitCode.USAGE in command.EXIT_CODES


def _readme_exit_codes() -> list[tuple[int, str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    head = text.index("| code | name | meaning |")
    rows = []
    for line in text[head:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        code, name, meaning = (cell.strip() for cell in line.strip("|").split("|"))
        rows.append((int(code), name, meaning))
    return rows


def test_the_readme_exit_code_table_is_the_enum():
    assert _readme_exit_codes() == [(int(code), code.name, code.description) for code in ExitCode]


def test_every_exit_code_a_help_lists_is_in_the_readme():
    documented = {code for code, _, _ in _readme_exit_codes()}
    for command in COMMANDS:
        assert {int(code) for code in command.EXIT_CODES} <= documented
    assert re.search(r"\| 130 \| INTERRUPTED \|", (ROOT / "README.md").read_text(encoding="utf-8"))
