"""`rollbackctl ack INCIDENT_ID --as NAME`: record that a team member acknowledged the rollback decision."""

from __future__ import annotations

import argparse
from typing import Any

from .. import inputs, paths
from ..errors import ExitCode, IncidentNotFound
from .common import add_command

EXIT_CODES = {
    ExitCode.OK: "acknowledgement recorded (or this person had already acknowledged: the first time is kept)",
    ExitCode.ERROR: "error: the record is unreadable or does not match the incident schema (nothing was written)",
    ExitCode.USAGE: "no such incident, a malformed incident id, or a bad name",
    ExitCode.INTERRUPTED: None,
}

EXAMPLES = """\
examples:
  rollbackctl ack 20261202T160000Z-rollback-v0.9.0 --as "Dee Bee"
      records Dee Bee's acknowledgement with the time; the record and its report list who acknowledged, who of
      the roster did not yet, and the time from the announcement to the last acknowledgement
"""


def run(args: argparse.Namespace) -> ExitCode:
    from ..people import acknowledge, summary
    from ..record import read_record

    folder = paths.incident_path(args.incident_id, args.incidents_dir)
    ack, added = acknowledge(folder, args.name)
    roles = ", ".join(ack.get("roles") or []) or "not in the roster"
    if added:
        print(f"incident {args.incident_id}: {ack['name']} ({roles}) acknowledged at {ack['at']}")
    else:
        print(f"incident {args.incident_id}: {ack['name']} had already acknowledged at {ack['at']}")
    state = summary(read_record(folder)) or {}
    if state.get("missing"):
        print(f"not acknowledged yet: {', '.join(state['missing'])}")
    elif state.get("acknowledged") and (read_record(folder).get("people") or {}).get("roles"):
        print("everyone in the roster has acknowledged")
    return ExitCode.OK


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``ack INCIDENT_ID --as NAME [--incidents-dir DIR]``."""
    parser = add_command(
        subparsers,
        "ack",
        run=run,
        exit_codes=EXIT_CODES,
        epilog=EXAMPLES,
        help="record that a team member acknowledged the rollback decision",
        description="The plan's Initiate Rollback: \"All team members acknowledge receipt\". Records NAME's "
        "acknowledgement, with the time, in the incident record (written atomically, under a lock, so "
        "concurrent acknowledgements and the running rollback lose none). A rollback started with "
        "--ack-timeout waits for them after the announcement.",
    )
    parser.add_argument(
        "incident_id",
        metavar="INCIDENT_ID",
        type=inputs.arg(inputs.identifier, "INCIDENT_ID", error=IncidentNotFound),
        help="the incident whose rollback is acknowledged",
    )
    parser.add_argument(
        "--as",
        dest="name",
        required=True,
        metavar="NAME",
        type=inputs.arg(inputs.person_name, "--as"),
        help="who acknowledges (as in the roster; case and spacing do not matter)",
    )
    parser.add_argument(
        "--incidents-dir",
        metavar="DIR",
        type=inputs.arg(inputs.directory, "--incidents-dir"),
        help="where incident records are (default $ROLLBACKCTL_INCIDENTS_DIR, else incidents/)",
    )
    return parser
