"""The rollback plan's Rollback Decision Matrix, row by row (the `decide` command is `rollbackctl.cli.decide`).

The plan's table (section "Rollback Decision Matrix") has eleven rows. Three of them are conditional
("Rollback if fix > N hours"): with a fix estimate strictly greater than N the answer is a rollback,
with an estimate of N or less it is a fix forward, and without an estimate the answer stays
conditional. A combination the table does not list (data/medium) is never guessed: the plan's
decision authority decides.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any

from .errors import UsageError

ISSUE_TYPES = ("functional", "performance", "security", "data")
SEVERITIES = ("critical", "high", "medium")

# Decisions, from the plan's "Rollback Decision" column.
IMMEDIATE_ROLLBACK_AND_RECOVERY = "immediate_rollback_and_recovery"
IMMEDIATE_ROLLBACK = "immediate_rollback"
ROLLBACK = "rollback"
FIX_FORWARD = "fix_forward"
FIX_FORWARD_IF_POSSIBLE = "fix_forward_if_possible"

# Status of an answer.
DECIDED = "decided"
CONDITIONAL = "conditional"
AUTHORITY_DECIDES = "authority_decides"

# Procedures (plan: "Standard Rollback Procedure", "Emergency Rollback Procedure").
EMERGENCY = "emergency"
STANDARD = "standard"

# Database restore: required by the row, or decided by the toolkit from the schema.
RESTORE_REQUIRED = "required"
RESTORE_AUTO = "auto"

DECISION_AUTHORITY = (
    "the Lead DevOps Engineer, else the Technical Project Manager, else the CTO; "
    "without them, a consensus of at least two senior engineers"
)

_ISSUE_LABELS = {"functional": "Functional Bug", "performance": "Performance", "security": "Security", "data": "Data"}
_DECISION_LABELS = {
    IMMEDIATE_ROLLBACK_AND_RECOVERY: "immediate rollback + recovery",
    IMMEDIATE_ROLLBACK: "immediate rollback",
    ROLLBACK: "rollback",
    FIX_FORWARD: "fix forward",
    FIX_FORWARD_IF_POSSIBLE: "fix forward if possible",
}
_PROCEDURE_LABELS = {EMERGENCY: "Emergency Rollback Procedure", STANDARD: "Standard Rollback Procedure"}


@dataclass(frozen=True)
class MatrixRow:
    """One row of the plan's table, with its machine-readable meaning.

    `decision` is None for a conditional row; `threshold` is then its "fix > N hours" bound (an
    estimate above it means `rollback`, at or below it `fix_forward`).
    """

    number: int
    issue_type: str
    severity: str
    impact: str
    text_decision: str
    decision: str | None
    threshold: datetime.timedelta | None = None
    database_restore_required: bool = False

    @property
    def text(self) -> str:
        """The row exactly as the plan writes it."""
        return f"{_ISSUE_LABELS[self.issue_type]} | {self.severity.title()} | {self.impact} | {self.text_decision}"


_HOUR = datetime.timedelta(hours=1)

# The plan's table, in the plan's order (row numbers are 1-based).
MATRIX: tuple[MatrixRow, ...] = (
    MatrixRow(1, "functional", "critical", "Core functionality broken", "Immediate rollback", IMMEDIATE_ROLLBACK),
    MatrixRow(2, "functional", "high", "Important feature broken", "Rollback if fix > 2 hours", None, 2 * _HOUR),
    MatrixRow(3, "functional", "medium", "Non-critical feature broken", "Fix forward if possible",
              FIX_FORWARD_IF_POSSIBLE),
    MatrixRow(4, "performance", "critical", "System unusable", "Immediate rollback", IMMEDIATE_ROLLBACK),
    MatrixRow(5, "performance", "high", "Significant slowdown", "Rollback if fix > 2 hours", None, 2 * _HOUR),
    MatrixRow(6, "performance", "medium", "Minor slowdown", "Fix forward", FIX_FORWARD),
    MatrixRow(7, "security", "critical", "Data breach possible", "Immediate rollback", IMMEDIATE_ROLLBACK),
    MatrixRow(8, "security", "high", "Vulnerability exposed", "Immediate rollback", IMMEDIATE_ROLLBACK),
    MatrixRow(9, "security", "medium", "Minor vulnerability", "Fix forward if possible", FIX_FORWARD_IF_POSSIBLE),
    MatrixRow(10, "data", "critical", "Data corruption", "Immediate rollback + recovery",
              IMMEDIATE_ROLLBACK_AND_RECOVERY, database_restore_required=True),
    MatrixRow(11, "data", "high", "Data inconsistency", "Rollback if fix > 1 hour", None, _HOUR,
              database_restore_required=True),
)

_ROWS = {(row.issue_type, row.severity): row for row in MATRIX}

# ---- durations ------------------------------------------------------------------------------------

DURATION_FORMS = "whole numbers with h, m, s in that order, e.g. 2h, 90m, 1h30m, 1h0m, 30s"
_DURATION = re.compile(r"(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?")


def parse_duration(text: str) -> datetime.timedelta:
    """Parse `2h`, `90m`, `1h30m`, `30s` (h, m, s in that order, whole numbers) into a timedelta.

    Raises UsageError naming the value and the accepted forms for anything else (empty, a bare
    number, spaces, signs, decimals, units out of order, a trailing newline).
    """
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None or not any(match.groupdict().values()):
        raise UsageError(f"invalid duration {text!r}: use {DURATION_FORMS}")
    parts = {unit: int(value or 0) for unit, value in match.groupdict().items()}
    try:
        return datetime.timedelta(hours=parts["h"], minutes=parts["m"], seconds=parts["s"])
    except OverflowError:
        raise UsageError(f"invalid duration {text!r}: too large") from None


def format_duration(value: datetime.timedelta) -> str:
    """Render a timedelta in the form parse_duration reads: 2h, 1h30m, 45s, 0s (whole seconds)."""
    total = int(value.total_seconds())
    sign, total = ("-", -total) if total < 0 else ("", total)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n)
    return sign + (text or "0s")


# ---- the decision ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    """What the matrix says for one (issue type, severity), and why.

    decision: immediate_rollback_and_recovery, immediate_rollback, rollback, fix_forward,
        fix_forward_if_possible, or None when the answer is conditional or not covered.
    status: decided, conditional (a "Rollback if fix > N hours" row without an estimate) or
        authority_decides (the matrix has no row for the combination).
    procedure: emergency, standard or None. For a conditional answer: the procedure of the rollback
        branch, should it be taken.
    database_restore: required, auto (the toolkit decides from the schema) or None when no rollback
        happens. For a conditional answer: what the rollback branch would need.
    """

    issue_type: str
    severity: str
    impact: str | None
    row: int | None
    row_text: str | None
    decision: str | None
    status: str
    threshold: datetime.timedelta | None
    fix_estimate: datetime.timedelta | None
    procedure: str | None
    database_restore: str | None
    explanation: str

    @property
    def is_rollback(self) -> bool:
        """True when the answer is a rollback of any kind."""
        return self.decision in (IMMEDIATE_ROLLBACK_AND_RECOVERY, IMMEDIATE_ROLLBACK, ROLLBACK)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; durations rendered as e.g. "2h"."""
        return {
            "issue_type": self.issue_type,
            "severity": self.severity,
            "impact": self.impact,
            "row": self.row,
            "row_text": self.row_text,
            "decision": self.decision,
            "status": self.status,
            "threshold": format_duration(self.threshold) if self.threshold is not None else None,
            "fix_estimate": format_duration(self.fix_estimate) if self.fix_estimate is not None else None,
            "procedure": self.procedure,
            "database_restore": self.database_restore,
            "explanation": self.explanation,
        }


def _check_choice(kind: str, value: str, accepted: tuple[str, ...]) -> str:
    if value not in accepted:
        raise UsageError(f"unknown {kind} {value!r}: use one of {', '.join(accepted)}")
    return value


def _restore_for(row: MatrixRow) -> str:
    return RESTORE_REQUIRED if row.database_restore_required else RESTORE_AUTO


def _restore_phrase(restore: str) -> str:
    if restore == RESTORE_REQUIRED:
        return "restore the database from the pre-deployment backup"
    return "the toolkit restores the database only if the schema requires it"


def _label(issue_type: str, severity: str) -> str:
    return f"{_ISSUE_LABELS[issue_type]} / {severity.title()}"


def _uncovered(issue_type: str, severity: str, estimate: datetime.timedelta | None) -> Decision:
    return Decision(
        issue_type, severity, None, None, None, None, AUTHORITY_DECIDES, None, estimate, None, None,
        f"The decision matrix has no row for {_label(issue_type, severity)}: no automatic answer; "
        f"the decision authority decides ({DECISION_AUTHORITY}).",
    )


def _fixed(row: MatrixRow, estimate: datetime.timedelta | None) -> Decision:
    """A row with an unconditional answer; a fix estimate does not change it."""
    rollback = row.decision in (IMMEDIATE_ROLLBACK, IMMEDIATE_ROLLBACK_AND_RECOVERY)
    procedure = EMERGENCY if rollback else None
    restore = _restore_for(row) if rollback else None
    what = f"{_label(row.issue_type, row.severity)} ({row.impact}): {_DECISION_LABELS[row.decision]}"
    if rollback:
        what += f" with the {_PROCEDURE_LABELS[EMERGENCY]}; {_restore_phrase(restore)}"
    if estimate is not None:
        what += f" (the fix estimate {format_duration(estimate)} does not change this row)"
    return Decision(row.issue_type, row.severity, row.impact, row.number, row.text, row.decision, DECIDED,
                    None, estimate, procedure, restore, what + ".")


def _conditional(row: MatrixRow, estimate: datetime.timedelta | None) -> Decision:
    """A "Rollback if fix > N hours" row: strictly greater rolls back, equal or less fixes forward."""
    assert row.threshold is not None
    bound = format_duration(row.threshold)
    head = f"{_label(row.issue_type, row.severity)} ({row.impact}): rollback if the fix takes more than {bound}"
    restore = _restore_for(row)
    if estimate is None:
        return Decision(
            row.issue_type, row.severity, row.impact, row.number, row.text, None, CONDITIONAL, row.threshold, None,
            STANDARD, restore,
            f"{head}; give a fix estimate (--fix-estimate): above {bound} roll back with the "
            f"{_PROCEDURE_LABELS[STANDARD]} ({_restore_phrase(restore)}), otherwise fix forward.",
        )
    if estimate > row.threshold:
        return Decision(
            row.issue_type, row.severity, row.impact, row.number, row.text, ROLLBACK, DECIDED, row.threshold, estimate,
            STANDARD, restore,
            f"{head}; the fix estimate {format_duration(estimate)} is more than {bound}: roll back with the "
            f"{_PROCEDURE_LABELS[STANDARD]}; {_restore_phrase(restore)}.",
        )
    return Decision(
        row.issue_type, row.severity, row.impact, row.number, row.text, FIX_FORWARD, DECIDED, row.threshold, estimate,
        None, None,
        f"{head}; the fix estimate {format_duration(estimate)} is not more than {bound}: fix forward.",
    )


def decide(issue_type: str, severity: str, fix_estimate: datetime.timedelta | None = None) -> Decision:
    """The matrix's answer for an issue type and severity, given an optional fix estimate.

    Raises UsageError for an unknown issue type or severity, or a negative estimate.
    """
    _check_choice("issue type", issue_type, ISSUE_TYPES)
    _check_choice("severity", severity, SEVERITIES)
    if fix_estimate is not None and fix_estimate < datetime.timedelta(0):
        raise UsageError(f"invalid fix estimate {format_duration(fix_estimate)}: it cannot be negative")
    row = _ROWS.get((issue_type, severity))
    if row is None:
        return _uncovered(issue_type, severity, fix_estimate)
    if row.threshold is None:
        return _fixed(row, fix_estimate)
    return _conditional(row, fix_estimate)


def _headline(decision: Decision) -> str:
    if decision.status == AUTHORITY_DECIDES:
        return "NOT IN THE MATRIX - the decision authority decides"
    if decision.status == CONDITIONAL:
        assert decision.threshold is not None
        return f"CONDITIONAL - rollback if the fix takes more than {format_duration(decision.threshold)}"
    assert decision.decision is not None
    headline = _DECISION_LABELS[decision.decision].upper()
    if decision.procedure:
        headline += f" ({decision.procedure} procedure)"
    return headline


def format_decision(decision: Decision) -> str:
    """A few lines for a terminal: the answer, the matrix row, the database restore, why."""
    lines = [f"Decision: {_headline(decision)}"]
    if decision.row is not None:
        lines.append(f"Matrix row {decision.row}: {decision.row_text}")
    else:
        lines.append(f"Matrix row: none for {decision.issue_type}/{decision.severity}")
    if decision.database_restore is not None:
        note = "if the rollback branch is taken" if decision.status == CONDITIONAL else ""
        meaning = "required" if decision.database_restore == RESTORE_REQUIRED else "auto (decided from the schema)"
        lines.append(f"Database restore: {meaning} {note}".rstrip())
    lines.append(f"Why: {decision.explanation}")
    return "\n".join(lines)


# ---- command line ---------------------------------------------------------------------------------

def matrix_table() -> str:
    """The plan's table as text, for --help."""
    return "\n".join(f"  {row.number:>2}. {row.text}" for row in MATRIX)
