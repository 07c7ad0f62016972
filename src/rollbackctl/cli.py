"""rollbackctl command line."""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .commands import add_run_parsers
from .errors import PlaybookFailed, RollbackctlError
from .matrix import add_decide_parser
from .project import find_project
from .report import add_report_parser
from .sandbox import DIR_ENV, PORT_ENV, Sandbox
from .triggers import add_triggers_parser

EXIT_CODES = """exit codes (each command's --help has its own):
  0  success
  1  error (message on stderr)
  2  usage error, or the project (playbooks, roles) was not found
  3  a playbook or phase failed (the failing host, task and message are printed)
  4  refused: no rollback authority under the plan
  5  locked: another rollback holds the environment
  6  triggers: at least one rollback trigger fired
  7  triggers: the metrics source is unreadable
  130 interrupted
"""


def _print_result(result) -> None:
    print(f"{result.playbook}: {result.status} (changed={result.changed_count}, "
          f"hosts changed: {', '.join(result.changed_hosts) or 'none'})")


def cmd_sandbox(args: argparse.Namespace) -> int:
    sandbox = Sandbox(find_project())
    if args.action == "up":
        print(f"Provisioning the local sandbox in {sandbox.directory} ...", flush=True)
        _print_result(sandbox.up(check=args.check))
        if not args.check:
            print(json.dumps(sandbox.health(), indent=2))
    elif args.action == "down":
        _print_result(sandbox.down(check=args.check))
    else:
        health = sandbox.health()
        print(json.dumps(health, indent=2))
        return 0 if health.get("status") == "ok" else 1
    return 0


def build_parser() -> argparse.ArgumentParser:
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
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rollbackctl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sandbox = sub.add_parser(
        "sandbox",
        help="provision, inspect or remove the local sandbox platform",
        description=(
            "The local sandbox runs the platform on this machine: FerretDB under pm2, the app in pm2 cluster "
            f"mode behind nginx, all on loopback. Its state lives in .sandbox/ (or ${DIR_ENV}); ports are "
            f"${PORT_ENV} (default 18080, web) and the next two (app, database)."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sandbox.add_argument("action", choices=["up", "down", "status"],
                         help="up: provision (idempotent); down: stop and remove; status: /health through nginx")
    sandbox.add_argument("--check", action="store_true", help="report what would change, change nothing")
    sandbox.set_defaults(func=cmd_sandbox)
    add_decide_parser(sub)
    add_triggers_parser(sub)
    add_run_parsers(sub)
    add_report_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
        return 130


if __name__ == "__main__":
    sys.exit(main())
