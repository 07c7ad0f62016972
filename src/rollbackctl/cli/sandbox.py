"""`rollbackctl sandbox up|down|status`: the local sandbox platform."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from ..errors import ExitCode
from ..project import find_project
from .common import add_command

if TYPE_CHECKING:
    from ..runner import PlaybookResult

# Same names as rollbackctl.sandbox (which imports ansible-runner: loaded when the command runs).
DIR_ENV = "ROLLBACK_SANDBOX_DIR"
PORT_ENV = "ROLLBACK_SANDBOX_PORT_BASE"

EXIT_CODES = {
    ExitCode.OK: "done (status: the platform answers /health with status ok)",
    ExitCode.ERROR: "error (message on stderr); status: the platform is not healthy",
    ExitCode.USAGE: None,
    ExitCode.PHASE_FAILED: "a playbook failed (the failing host, task and message are printed)",
    ExitCode.INTERRUPTED: None,
}


def _print_result(result: PlaybookResult) -> None:
    print(f"{result.playbook}: {result.status} (changed={result.changed_count}, "
          f"hosts changed: {', '.join(result.changed_hosts) or 'none'})")


def run(args: argparse.Namespace) -> ExitCode:
    """Provision (idempotent), remove, or show the health of the sandbox."""
    from ..sandbox import Sandbox

    sandbox = Sandbox(find_project())
    sandbox.check_environment()  # before anything runs: a bad port or folder in the environment is named
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
        return ExitCode.OK if health.get("status") == "ok" else ExitCode.ERROR
    return ExitCode.OK


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``sandbox {up,down,status} [--check]``."""
    parser = add_command(
        subparsers, "sandbox", run=run, exit_codes=EXIT_CODES,
        help="provision, inspect or remove the local sandbox platform",
        description=(
            "The local sandbox runs the platform on this machine: FerretDB under pm2, the app in pm2 cluster "
            f"mode behind nginx, all on loopback. Its state lives in .sandbox/ (or ${DIR_ENV}); ports are "
            f"${PORT_ENV} (default 18080, web) and the next two (app, database)."
        ),
    )
    parser.add_argument("action", choices=["up", "down", "status"],
                        help="up: provision (idempotent); down: stop and remove; status: /health through nginx")
    parser.add_argument("--check", action="store_true", help="report what would change, change nothing")
    return parser
