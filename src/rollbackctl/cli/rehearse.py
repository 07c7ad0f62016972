"""`rollbackctl rehearse`: the plan's Rollback Testing on the sandbox (default) or a staging inventory."""

from __future__ import annotations

import argparse
from typing import Any

from .. import inputs
from ..errors import ExitCode
from ..inputs import DATABASE_CHOICES, version_arg
from ..triggers.evaluate import MISSING_POLICIES, NOT_BREACHING
from .common import add_command, authority_options, run_options
from .run import ROLLBACK_EXIT_CODES, print_outcome

EXIT_CODES = {
    **ROLLBACK_EXIT_CODES,
    ExitCode.OK: "the platform returned to its state before the deployment (releases and database content hashes "
                 "match)",
    ExitCode.ERROR: "error, no trigger fired on the deployed release, or the platform did not return to its "
                    "previous state (each difference is printed)",
    ExitCode.USAGE: "usage error: bad option, malformed version, unknown inventory, or the platform does not run "
                    "the stable release",
}


def run(args: argparse.Namespace) -> ExitCode:
    from ..rehearsal import rehearse  # the library (ansible-runner) only when a command runs

    result = rehearse(
        decided_by=args.decided_by, role=args.role, consensus=args.consensus or [], inventory=args.inventory,
        deploy=args.deploy, to_version=args.to, database=args.database, missing=args.missing,
        incident_id=args.incident_id, incidents=args.incidents_dir, break_lock=args.break_lock, quiet=args.quiet)
    if result.record is None:
        return result.code
    print_outcome(result.record)
    if result.differences:
        for line in result.differences:
            print(f"difference: {line}")
        return result.code
    print(f"the platform returned to its state before {result.deployed}: releases and database content hashes match")
    print(f"rehearsal report (every phase against Appendix C): {result.record.path / 'incident.md'}")
    return result.code


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``rehearse [-i STAGING] [--deploy VERSION] [--to VERSION] ...``."""
    parser = add_command(
        subparsers, "rehearse", run=run, exit_codes=EXIT_CODES,
        help="the plan's Rollback Testing on the sandbox (default) or a staging inventory",
        description=(
            "Deploy the new release with its backup, observe the platform and let the rollback triggers fire, "
            "decide with the matrix, run the standard rollback, check that the platform returned to its previous "
            "state (releases, database content hashes) and write the record and a rehearsal report comparing "
            "every phase with Appendix C. Without -i it provisions and uses the local sandbox."))
    parser.add_argument("-i", "--inventory",
                        type=inputs.arg(inputs.plain_value, "-i/--inventory", what="an inventory path"),
                        help="a staging inventory (default: the local sandbox)")
    parser.add_argument("--deploy", default="v1.0.0", metavar="VERSION", type=version_arg("--deploy"),
                        help="the new release (default v1.0.0)")
    parser.add_argument("--to", default="v0.9.0", metavar="VERSION", type=version_arg("--to"),
                        help="the stable release (default v0.9.0)")
    parser.add_argument("--database", choices=DATABASE_CHOICES, default="auto")
    parser.add_argument("--missing", choices=MISSING_POLICIES, default=NOT_BREACHING,
                        help="missing-data policy for the triggers (default not_breaching: the sandbox does not "
                             "export every metric)")
    parser.add_argument("--incident-id", metavar="ID", type=inputs.arg(inputs.identifier, "--incident-id"))
    authority_options(parser, required=False)
    run_options(parser)
    return parser
