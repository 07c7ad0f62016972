"""`rollbackctl decide`: what the plan's Rollback Decision Matrix says for an issue type and severity."""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any

from .. import inputs, matrix
from ..errors import ExitCode
from .common import add_command

EXIT_CODES = {
    ExitCode.OK: "answer printed",
    ExitCode.ERROR: None,
    ExitCode.USAGE: "usage error (unknown value, bad --fix-estimate)",
    ExitCode.INTERRUPTED: None,
}


def run(args: argparse.Namespace) -> ExitCode:
    """Print the matrix's answer (text or JSON)."""
    decision = matrix.decide(args.issue_type, args.severity, args.fix_estimate)  # a timedelta (inputs.duration)
    print(json.dumps(decision.to_dict(), indent=2) if args.json else matrix.format_decision(decision))
    return ExitCode.OK


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``decide --issue-type T --severity S [--fix-estimate D] [--json]``."""
    parser = add_command(
        subparsers, "decide", run=run, exit_codes=EXIT_CODES,
        help="what the rollback plan's decision matrix says for an issue type and severity",
        description=textwrap.fill(width=78, text=(
            "Look up the rollback plan's Rollback Decision Matrix. 'Rollback if fix > N hours' rows need "
            "--fix-estimate: an estimate strictly greater than N means rollback, N or less means fix forward; "
            "without an estimate the answer is conditional. A combination the matrix does not list "
            "(data/medium) is left to the decision authority, never guessed."
        )),
        epilog=(
            "the plan's matrix (Issue Type | Severity | Impact | Rollback Decision):\n"
            f"{matrix.matrix_table()}\n\n"
            "procedure: 'Immediate' rows use the Emergency Rollback Procedure, other rollbacks the Standard one.\n"
            "database restore: required for 'Immediate rollback + recovery' and for a Data/High rollback;\n"
            "otherwise 'auto' (the toolkit restores only if the schema requires it).\n"
        ),
    )
    parser.add_argument("--issue-type", required=True, choices=matrix.ISSUE_TYPES,
                        help="kind of issue: functional (bug), performance, security, data")
    parser.add_argument("--severity", required=True, choices=matrix.SEVERITIES, help="severity of the issue")
    parser.add_argument("--fix-estimate", metavar="DURATION",
                        type=inputs.arg(inputs.duration, "--fix-estimate", positive=False),
                        help=f"how long a fix forward would take ({matrix.DURATION_FORMS}); "
                             "decides the 'Rollback if fix > N hours' rows")
    parser.add_argument("--json", action="store_true", help="print the decision as JSON")
    return parser
