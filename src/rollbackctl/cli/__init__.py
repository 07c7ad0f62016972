"""The `rollbackctl` command line: one module per sub-command, `main()` and `build_parser()` here.

Each sub-command module has ``add_parser(subparsers)`` and ``run(args) -> ExitCode``; the logic lives in
the library (`matrix`, `triggers`, `procedures`, `rehearsal`, `report`, `sandbox`). Errors are
`RollbackctlError`s: `main()` prints their message and returns their exit code.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import ExitCode, PlaybookFailed, RollbackctlError
from . import decide, rehearse, report, resume, run, sandbox, triggers
from .common import exit_codes_epilog

#: The sub-commands, in the order --help lists them.
COMMANDS = (decide, triggers, run, resume, rehearse, report, sandbox)


def build_parser() -> argparse.ArgumentParser:
    """The `rollbackctl` parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="rollbackctl",
        description=(
            "Roll back the chatbot platform (pm2, MongoDB, nginx) with Ansible and keep an incident record.\n"
            "  decide    the plan's Rollback Decision Matrix\n"
            "  triggers  evaluate the plan's Rollback Triggers from observations or Prometheus\n"
            "  run       run the rollback under decision authority, with a lock and an incident record\n"
            "  resume    continue a stopped or interrupted rollback\n"
            "  rehearse  the plan's Rollback Testing on the sandbox (or a staging inventory)\n"
            "  report    render an incident record (md or html)\n"
            "  sandbox   the local sandbox platform"),
        epilog=exit_codes_epilog(dict.fromkeys(ExitCode), "exit codes (each command's --help has its own):"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rollbackctl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; its exit code (an `ExitCode`)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PlaybookFailed as exc:
        print(f"rollbackctl: {exc}", file=sys.stderr)
        if exc.result is not None:
            print(f"rollbackctl: runner artifacts: {exc.result.artifacts_dir}", file=sys.stderr)
        return exc.exit_code
    except RollbackctlError as exc:
        print(f"rollbackctl: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("rollbackctl: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
