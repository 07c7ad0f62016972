"""The plan's Rollback Decision Matrix: every row, every threshold boundary, uncovered cells, durations, CLI."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta

import pytest

from rollbackctl import matrix
from rollbackctl.cli import decide as decide_command
from rollbackctl.errors import RollbackctlError, UsageError
from rollbackctl.matrix import decide, format_decision, parse_duration

# Row texts copied verbatim from the plan's table.
# (issue_type, severity, row number, row text, decision, procedure, database restore)
FIXED_ROWS = [
    ("functional", "critical", 1, "Functional Bug | Critical | Core functionality broken | Immediate rollback",
     "immediate_rollback", "emergency", "auto"),
    ("functional", "medium", 3, "Functional Bug | Medium | Non-critical feature broken | Fix forward if possible",
     "fix_forward_if_possible", None, None),
    ("performance", "critical", 4, "Performance | Critical | System unusable | Immediate rollback",
     "immediate_rollback", "emergency", "auto"),
    ("performance", "medium", 6, "Performance | Medium | Minor slowdown | Fix forward", "fix_forward", None, None),
    ("security", "critical", 7, "Security | Critical | Data breach possible | Immediate rollback",
     "immediate_rollback", "emergency", "auto"),
    ("security", "high", 8, "Security | High | Vulnerability exposed | Immediate rollback",
     "immediate_rollback", "emergency", "auto"),
    ("security", "medium", 9, "Security | Medium | Minor vulnerability | Fix forward if possible",
     "fix_forward_if_possible", None, None),
    ("data", "critical", 10, "Data | Critical | Data corruption | Immediate rollback + recovery",
     "immediate_rollback_and_recovery", "emergency", "required"),
]

# (issue_type, severity, row number, row text, threshold, database restore on rollback)
CONDITIONAL_ROWS = [
    ("functional", "high", 2, "Functional Bug | High | Important feature broken | Rollback if fix > 2 hours",
     timedelta(hours=2), "auto"),
    ("performance", "high", 5, "Performance | High | Significant slowdown | Rollback if fix > 2 hours",
     timedelta(hours=2), "auto"),
    ("data", "high", 11, "Data | High | Data inconsistency | Rollback if fix > 1 hour", timedelta(hours=1), "required"),
]


# ---- the table itself -----------------------------------------------------------------------------

def test_matrix_has_the_plans_eleven_rows_in_order():
    assert [row.number for row in matrix.MATRIX] == list(range(1, 12))
    covered = {(r[0], r[1]) for r in FIXED_ROWS} | {(r[0], r[1]) for r in CONDITIONAL_ROWS}
    assert {(row.issue_type, row.severity) for row in matrix.MATRIX} == covered


# ---- every row ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("issue", "severity", "number", "text", "decision", "procedure", "restore"), FIXED_ROWS)
def test_fixed_rows(issue, severity, number, text, decision, procedure, restore):
    result = decide(issue, severity)
    assert result.status == "decided"
    assert (result.row, result.row_text) == (number, text)
    assert result.impact == text.split(" | ")[2]
    assert result.decision == decision
    assert result.procedure == procedure
    assert result.database_restore == restore
    assert result.threshold is None


@pytest.mark.parametrize(("issue", "severity", "number", "text", "decision", "procedure", "restore"), FIXED_ROWS)
def test_a_fix_estimate_does_not_change_a_fixed_row(issue, severity, number, text, decision, procedure, restore):
    result = decide(issue, severity, timedelta(hours=10))
    assert (result.decision, result.procedure, result.database_restore) == (decision, procedure, restore)
    assert "does not change this row" in result.explanation


@pytest.mark.parametrize(("issue", "severity", "number", "text", "threshold", "restore"), CONDITIONAL_ROWS)
def test_conditional_rows_without_estimate_name_the_threshold(issue, severity, number, text, threshold, restore):
    result = decide(issue, severity)
    assert result.status == "conditional"
    assert result.decision is None
    assert (result.row, result.row_text) == (number, text)
    assert result.threshold == threshold
    assert result.procedure == "standard"  # if the rollback branch is taken
    assert result.database_restore == restore
    assert matrix.format_duration(threshold) in result.explanation
    assert "--fix-estimate" in result.explanation


@pytest.mark.parametrize(("issue", "severity", "number", "text", "threshold", "restore"), CONDITIONAL_ROWS)
@pytest.mark.parametrize(
    ("delta", "expected"),
    [(-timedelta(minutes=1), "fix_forward"), (timedelta(0), "fix_forward"), (timedelta(seconds=1), "rollback"),
     (timedelta(minutes=1), "rollback")],
    ids=["below", "equal", "one-second-above", "above"],
)
def test_conditional_rows_at_every_boundary(issue, severity, number, text, threshold, restore, delta, expected):
    result = decide(issue, severity, threshold + delta)
    assert result.status == "decided"
    assert result.decision == expected
    assert result.fix_estimate == threshold + delta
    assert result.row == number
    if expected == "rollback":
        assert (result.procedure, result.database_restore) == ("standard", restore)
        assert "is more than" in result.explanation
    else:
        assert (result.procedure, result.database_restore) == (None, None)
        assert "is not more than" in result.explanation


def test_zero_estimate_fixes_forward():
    assert decide("data", "high", timedelta(0)).decision == "fix_forward"


def test_negative_estimate_is_refused():
    with pytest.raises(UsageError, match="negative"):
        decide("functional", "high", timedelta(hours=-1))


# ---- what the matrix does not cover ----------------------------------------------------------------

def test_uncovered_combinations_go_to_the_decision_authority():
    covered = {(row.issue_type, row.severity) for row in matrix.MATRIX}
    uncovered = [(i, s) for i in matrix.ISSUE_TYPES for s in matrix.SEVERITIES if (i, s) not in covered]
    assert uncovered == [("data", "medium")]
    for issue, severity in uncovered:
        for estimate in (None, timedelta(hours=5)):
            result = decide(issue, severity, estimate)
            assert result.status == "authority_decides"
            assert (result.decision, result.row, result.row_text, result.impact) == (None, None, None, None)
            assert (result.procedure, result.database_restore, result.threshold) == (None, None, None)
            assert "Lead DevOps Engineer" in result.explanation


@pytest.mark.parametrize(("issue", "severity", "bad"), [("bug", "high", "bug"), ("data", "low", "low"),
                                                        ("Functional", "high", "Functional"), ("", "high", "''")])
def test_unknown_values_are_usage_errors_naming_them(issue, severity, bad):
    with pytest.raises(UsageError) as caught:
        decide(issue, severity)
    assert bad in str(caught.value)
    assert "use one of" in str(caught.value)
    assert caught.value.exit_code == 2


def test_usage_error_is_a_rollbackctl_error():
    assert issubclass(UsageError, RollbackctlError)
    assert UsageError.exit_code == 2


# ---- durations ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [("2h", timedelta(hours=2)), ("90m", timedelta(minutes=90)), ("1h30m", timedelta(hours=1, minutes=30)),
     ("1h0m", timedelta(hours=1)), ("30s", timedelta(seconds=30)), ("45s", timedelta(seconds=45)),
     ("1h2m3s", timedelta(hours=1, minutes=2, seconds=3)), ("0m", timedelta(0)), ("120m", timedelta(hours=2))],
)
def test_parse_duration_good_forms(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "2", "2 hours", "-1h", "1.5h", "1m2h", "h", "2h\n", " 2h", "2h ", "2H", "1s1m", "2hh", "1d", "+2h",
     "٢h", "99999999999999h"],
)
def test_parse_duration_bad_forms(text):
    with pytest.raises(UsageError) as caught:
        parse_duration(text)
    message = str(caught.value)
    assert repr(text) in message
    if not text.startswith("9999"):
        assert "1h30m" in message  # names the accepted forms


@pytest.mark.parametrize(("value", "text"), [(timedelta(hours=2), "2h"), (timedelta(minutes=90), "1h30m"),
                                             (timedelta(seconds=45), "45s"), (timedelta(0), "0s"),
                                             (timedelta(hours=1, seconds=5), "1h5s")])
def test_format_duration_round_trips(value, text):
    assert matrix.format_duration(value) == text
    assert parse_duration(text) == value


# ---- output ---------------------------------------------------------------------------------------

def test_to_dict_is_json_ready_with_durations_as_text():
    result = decide("functional", "high", timedelta(hours=3)).to_dict()
    assert json.loads(json.dumps(result)) == result
    assert result == {
        "issue_type": "functional", "severity": "high", "impact": "Important feature broken", "row": 2,
        "row_text": "Functional Bug | High | Important feature broken | Rollback if fix > 2 hours",
        "decision": "rollback", "status": "decided", "threshold": "2h", "fix_estimate": "3h",
        "procedure": "standard", "database_restore": "auto", "explanation": result["explanation"],
    }


def test_decision_is_frozen():
    result = decide("security", "high")
    with pytest.raises(AttributeError):
        result.decision = "fix_forward"


@pytest.mark.parametrize(
    ("args", "expected"),
    [(("data", "critical"), ["IMMEDIATE ROLLBACK + RECOVERY (emergency procedure)", "Matrix row 10", "required"]),
     (("data", "high"), ["CONDITIONAL", "more than 1h", "if the rollback branch is taken"]),
     (("data", "medium"), ["decision authority", "none for data/medium"]),
     (("performance", "medium"), ["FIX FORWARD", "Matrix row 6"])],
)
def test_format_decision(args, expected):
    text = format_decision(decide(*args))
    for fragment in expected:
        assert fragment in text
    assert 2 <= len(text.splitlines()) <= 6


# ---- command line ---------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rollbackctl")
    decide_command.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return args.func(args)


def test_cmd_decide_json(capsys):
    assert _run(["decide", "--issue-type", "data", "--severity", "high", "--fix-estimate", "90m", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["decision"] == "rollback"
    assert out["row"] == 11
    assert (out["threshold"], out["fix_estimate"]) == ("1h", "1h30m")
    assert out["database_restore"] == "required"


def test_cmd_decide_json_conditional_and_uncovered(capsys):
    _run(["decide", "--issue-type", "performance", "--severity", "high", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert (out["status"], out["decision"], out["threshold"]) == ("conditional", None, "2h")
    _run(["decide", "--issue-type", "data", "--severity", "medium", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert (out["status"], out["decision"]) == ("authority_decides", None)


def test_cmd_decide_text(capsys):
    assert _run(["decide", "--issue-type", "security", "--severity", "high"]) == 0
    assert "IMMEDIATE ROLLBACK" in capsys.readouterr().out


def test_cmd_decide_bad_estimate_is_a_usage_error():
    with pytest.raises(UsageError, match="1h30m"):
        _run(["decide", "--issue-type", "data", "--severity", "high", "--fix-estimate", "1.5h"])


@pytest.mark.parametrize("argv", [["decide", "--severity", "high"], ["decide", "--issue-type", "data"],
                                  ["decide", "--issue-type", "bug", "--severity", "high"]])
def test_cmd_decide_argument_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        _parser().parse_args(argv)
    assert caught.value.code == 2


def test_decide_help_quotes_the_matrix(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["decide", "--help"])
    out = capsys.readouterr().out
    for row in matrix.MATRIX:
        assert row.text in out
