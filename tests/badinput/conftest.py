"""The bad-input suite's count: how many cases ran against the real command line, and how many held."""

from __future__ import annotations

from collections import Counter

CASES: Counter = Counter()


def record(held: bool) -> None:
    """Count one bad input run through the command line (held: refused as the suite requires)."""
    CASES["run"] += 1
    CASES["held" if held else "broke"] += 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if CASES["run"]:
        terminalreporter.write_line(f"bad-input cases: {CASES['run']} run through the CLI, {CASES['held']} held, "
                                    f"{CASES['broke']} broke")
