"""`rollbackctl run standard`: roll back under decision authority, with a lock and an incident record."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from .. import inputs, matrix
from ..errors import ExitCode
from ..inputs import DATABASE_CHOICES, PROCEDURES, version_arg
from .common import add_command, authority_options, run_options
from .people import people_options, ticket_options

#: What run, resume and rehearse return.
ROLLBACK_EXIT_CODES = {
    ExitCode.OK: "the rollback completed and verified (or there was nothing to roll back)",
    ExitCode.ERROR: None,
    ExitCode.USAGE: "usage error: bad option, malformed version, unknown inventory or incident, procedure not "
                    "available",
    ExitCode.PHASE_FAILED: "a phase failed: the run stopped in a safe state (maintenance mode stays on); the next "
                           "step is printed",
    ExitCode.REFUSED: "refused: the decider has no rollback authority under the plan (nothing was changed)",
    ExitCode.LOCKED: "locked: another rollback holds this environment (its holder is named), or a stale lock or "
                     "an unusable lock file must be broken (--break-lock)",
    ExitCode.INTERRUPTED: "interrupted (SIGINT/SIGTERM): the phase is recorded as interrupted; `rollbackctl "
                          "resume` continues",
}
EXIT_CODES = ROLLBACK_EXIT_CODES

if TYPE_CHECKING:
    from ..record import IncidentRecord


def _fix_estimate(value: str, option: str) -> str:
    """--fix-estimate: a duration (checked here, kept as text: the procedure records the matrix row from it)."""
    inputs.duration(value, option, positive=False)
    return value


def print_outcome(record: IncidentRecord) -> None:
    """The incident's outcome, its next step and where its record is."""
    outcome = record.data["outcome"]
    print(f"incident {record.incident_id}: {outcome['status']} - {outcome['summary']}")
    if outcome.get("next_step"):
        print(f"next step: {outcome['next_step']}")
    print(f"record: {record.path / 'incident.json'} (rollbackctl report {record.incident_id})")


def run(args: argparse.Namespace) -> ExitCode:
    from ..procedures import run_rollback  # the library (ansible-runner) only when a command runs

    outcome = run_rollback(
        procedure=args.procedure, inventory=args.inventory, to_version=args.to, reason=args.reason,
        decided_by=args.decided_by, role=args.role, consensus=args.consensus or [], database=args.database,
        backup=args.backup, incident_id=args.incident_id, incidents=args.incidents_dir, issue_type=args.issue_type,
        severity=args.severity, fix_estimate=args.fix_estimate, triggers_report=args.triggers_report,
        check=args.check, break_lock=args.break_lock, quiet=args.quiet, zero_downtime=args.zero_downtime,
        roster=args.roster, ack_timeout=args.ack_timeout, retry_estimate=args.retry_estimate,
        tickets=ticket_options(args))
    print_outcome(outcome.record)
    return outcome.code


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``run standard -i INVENTORY --to VERSION --reason TEXT --decided-by NAME --role ROLE ...``."""
    parser = add_command(
        subparsers, "run", run=run, exit_codes=EXIT_CODES,
        help="roll back: authority, lock, phases through ansible-runner, incident record",
        description=(
            "Run the plan's rollback procedure phase by phase (preflight, announce, maintenance on, code rollback, "
            "verify app, database rollback if necessary, verify database, verify and maintenance off, post-rollback "
            "verification, notify, collect logs) and write the incident record. The database is restored when "
            "preflight finds that the target needs an older schema, or with --database yes. "
            "Lock and state: $ROLLBACKCTL_STATE_DIR (default ~/.local/state/rollbackctl)."))
    parser.add_argument("procedure", choices=PROCEDURES,
                        help="standard: the plan's Standard Rollback Procedure (emergency: not in this release)")
    parser.add_argument("-i", "--inventory", required=True,
                        type=inputs.arg(inputs.plain_value, "-i/--inventory", what="an inventory path"),
                        help="inventory of the environment to roll back")
    parser.add_argument("--to", required=True, metavar="VERSION", type=version_arg("--to"),
                        help="release to roll back to, e.g. v0.9.0")
    parser.add_argument("--reason", required=True,
                        type=inputs.arg(inputs.free_text, "--reason", purpose="say why the release is rolled back"),
                        help="why (goes into the announcement and the record)")
    authority_options(parser)
    parser.add_argument("--database", choices=DATABASE_CHOICES, default="auto",
                        help="auto (default): restore when the target needs an older schema; yes: restore; no: never")
    parser.add_argument("--zero-downtime", action="store_true",
                        help="code-only rollback without the maintenance window (a recorded departure from the "
                             "plan's step 2): pm2 reloads the cluster onto the target while users are served, and "
                             "the verification runs on the live target; preflight refuses it when the database "
                             "must be restored. Needs the app in pm2 cluster mode")
    parser.add_argument("--backup", metavar="NAME", type=inputs.arg(inputs.identifier, "--backup"),
                        help="backup to restore (default pre-deploy-<current release>)")
    parser.add_argument("--incident-id", metavar="ID", type=inputs.arg(inputs.identifier, "--incident-id"),
                        help="default <UTC timestamp>-rollback-<version>")
    parser.add_argument("--issue-type", choices=matrix.ISSUE_TYPES, help="record the matrix row (with --severity)")
    parser.add_argument("--severity", choices=matrix.SEVERITIES, help="with --issue-type")
    parser.add_argument("--fix-estimate", metavar="DURATION",
                        type=inputs.arg(_fix_estimate, "--fix-estimate"),
                        help="e.g. 90m, 2h (for the matrix row)")
    parser.add_argument("--triggers-report", metavar="FILE",
                        type=inputs.arg(inputs.path_text, "--triggers-report", what="a trigger report file"),
                        help="JSON of `rollbackctl triggers --json` to record")
    parser.add_argument("--check", action="store_true", help="check mode: report what would change, change nothing")
    people_options(parser)
    run_options(parser)
    return parser
