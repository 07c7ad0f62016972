"""The `rollbackctl` command line: one module per sub-command, `main()` and `build_parser()` here.

Each sub-command module has ``add_parser(subparsers)`` and ``run(args) -> ExitCode``; the logic lives in
the library (`matrix`, `triggers`, `procedures`, `rehearsal`, `report`, `sandbox`). Errors are
`RollbackctlError`s: `main()` prints their message and returns their exit code. Whatever else escapes a
command is answered by a last-resort handler, never by a bare traceback: RecursionError (input nested too
deeply) is a usage error (2), an OSError names its path (1), anything else is an internal error (1) whose
traceback ``ROLLBACKCTL_DEBUG=1`` shows.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback

from .. import __version__
from ..errors import ExitCode, PlaybookFailed, RollbackctlError
from . import ack, decide, rehearse, report, resume, run, sandbox, triggers
from .common import exit_codes_epilog

#: The sub-commands, in the order --help lists them.
COMMANDS = (decide, triggers, run, resume, ack, rehearse, report, sandbox)


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose error messages stay short (an invalid 100,000-character value is not echoed)."""

    def error(self, message: str):
        super().error(message if len(message) <= 500 else f"{message[:500]}... ({len(message)} characters)")


def build_parser() -> argparse.ArgumentParser:
    """The `rollbackctl` parser with every sub-command."""
    parser = Parser(
        prog="rollbackctl",
        description=(
            "Roll back the chatbot platform (pm2, MongoDB, nginx) with Ansible and keep an incident record.\n"
            "  decide    the plan's Rollback Decision Matrix\n"
            "  triggers  evaluate the plan's Rollback Triggers from observations or Prometheus\n"
            "  run       run the rollback under decision authority, with a lock and an incident record\n"
            "  resume    continue a stopped or interrupted rollback\n"
            "  ack       record that a team member acknowledged the rollback decision\n"
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


DEBUG_ENV = "ROLLBACKCTL_DEBUG"


def say(text: str) -> None:
    """One line on stderr, whatever it holds (undecodable bytes from the command line are escaped)."""
    stream = sys.stderr
    encoding = getattr(stream, "encoding", None) or "utf-8"
    stream.write(text.encode(encoding, "backslashreplace").decode(encoding, "replace") + "\n")
    stream.flush()


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "no", "false", "off")


def _os_error(exc: OSError) -> str:
    where = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    what = exc.strerror or str(exc) or type(exc).__name__
    return f"{where}: {what}" if where else what


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; its exit code (an `ExitCode`)."""
    try:
        args = build_parser().parse_args(argv)  # argparse type= validators raise UsageError (inputs.arg)
        return args.func(args)
    except PlaybookFailed as exc:
        say(f"rollbackctl: {exc}")
        if exc.result is not None:
            say(f"rollbackctl: runner artifacts: {exc.result.artifacts_dir}")
        return exc.exit_code
    except RollbackctlError as exc:
        say(f"rollbackctl: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        say("rollbackctl: interrupted")
        return ExitCode.INTERRUPTED
    except RecursionError:
        if _debug():
            traceback.print_exc()
        say("rollbackctl: an input is nested too deeply to be read (recursion limit reached)")
        return ExitCode.USAGE
    except BrokenPipeError:
        with contextlib.suppress(OSError):  # the reader went away (`| head`): say nothing more on stdout
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces a closed stream until exit
        return ExitCode.ERROR
    except OSError as exc:
        if _debug():
            traceback.print_exc()
        say(f"rollbackctl: {_os_error(exc)}")
        return ExitCode.ERROR
    except Exception as exc:
        if _debug():
            traceback.print_exc()
        detail = str(exc)
        detail = detail if len(detail) <= 500 else f"{detail[:500]}..."
        say(f"rollbackctl: internal error: {type(exc).__name__}: {detail} (set {DEBUG_ENV}=1 for the traceback)")
        return ExitCode.ERROR
