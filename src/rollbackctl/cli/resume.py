"""`rollbackctl resume INCIDENT_ID`: continue a stopped or interrupted rollback from its failed phase."""

from __future__ import annotations

import argparse
from typing import Any

from .. import inputs
from ..errors import ExitCode, IncidentNotFound
from .common import add_command, run_options
from .people import ticket_arguments, ticket_options
from .run import ROLLBACK_EXIT_CODES, print_outcome

EXIT_CODES = {
    **{code: meaning for code, meaning in ROLLBACK_EXIT_CODES.items() if code != ExitCode.REFUSED},
    ExitCode.OK: "the rollback completed and verified (or the incident had already completed)",
    ExitCode.USAGE: "usage error: unknown or malformed incident, or its inventory no longer exists",
}


def run(args: argparse.Namespace) -> ExitCode:
    from ..procedures import resume_rollback  # the library (ansible-runner) only when a command runs

    outcome = resume_rollback(incident_id=args.incident_id, incidents=args.incidents_dir, break_lock=args.break_lock,
                              quiet=args.quiet, tickets=ticket_options(args))
    if outcome.ran:
        print_outcome(outcome.record)
    return outcome.code


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``resume INCIDENT_ID [--incidents-dir DIR] [--break-lock] [--quiet]``."""
    parser = add_command(
        subparsers, "resume", run=run, exit_codes=EXIT_CODES,
        help="continue a stopped or interrupted rollback from its failed phase",
        description="Continue the incident's rollback from the first phase that is not done, with the same inputs. "
                    "A phase interrupted mid-way runs again (phases are idempotent). The lock of a run that died is "
                    "taken over.")
    parser.add_argument("incident_id", metavar="INCIDENT_ID",
                        type=inputs.arg(inputs.identifier, "INCIDENT_ID", error=IncidentNotFound))
    ticket_arguments(parser)
    run_options(parser)
    return parser
