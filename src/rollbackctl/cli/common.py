"""What the sub-commands share: the parser of each one (with its exit codes) and common options."""

from __future__ import annotations

import argparse
import getpass
import os
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

from .. import inputs
from ..authority import ROLE_HELP, consensus_entry
from ..errors import ExitCode

#: Per command: the exit codes it may return, each with what it means for that command (None: the
#: code's general meaning, `ExitCode.description`).
ExitCodes = Mapping[ExitCode, "str | None"]


def exit_codes_epilog(codes: ExitCodes, title: str = "exit codes:") -> str:
    """The ``exit codes:`` block of a --help, generated from `ExitCode`, in numeric order (wrapped at 100)."""
    lines = [title]
    for code, meaning in sorted(codes.items()):
        head = f"  {int(code)}  "
        lines += textwrap.wrap(meaning or code.description, width=100, initial_indent=head,
                               subsequent_indent=" " * len(head))
    return "\n".join(lines) + "\n"


def add_command(subparsers: Any, name: str, *, help: str, description: str, exit_codes: ExitCodes,
                run: Callable[[argparse.Namespace], ExitCode], epilog: str = "") -> argparse.ArgumentParser:
    """Register sub-command `name`: its --help ends with its exit codes; `run(args)` returns one of them."""
    parser = subparsers.add_parser(
        name, help=help, description=description,
        epilog=(f"{epilog.rstrip()}\n\n" if epilog else "") + exit_codes_epilog(exit_codes),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(func=run, exit_codes=dict(exit_codes))
    return parser


def whoami() -> str:
    """The operator's login name (the default decider of a rehearsal)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or "rehearsal"


def authority_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """--decided-by, --role, --consensus: who decides, under the plan's Rollback Decision Authority."""
    parser.add_argument("--decided-by", required=required, default=None if required else whoami(),
                        type=inputs.arg(inputs.person_name, "--decided-by"), metavar="NAME",
                        help="who decided the rollback")
    parser.add_argument("--role", required=required, default=None if required else "lead-devops-engineer",
                        type=inputs.arg(inputs.plain_value, "--role", what="a role", max_length=100),
                        help=f"the decider's role. {ROLE_HELP}")
    parser.add_argument("--consensus", action="append", metavar="NAME:ROLE",
                        type=inputs.arg(consensus_entry, "--consensus"),
                        help="a senior engineer agreeing (repeat): two distinct seniors may decide without the "
                             "Lead DevOps Engineer, the TPM or the CTO")


def run_options(parser: argparse.ArgumentParser) -> None:
    """--incidents-dir, --break-lock, --quiet: shared by run, resume and rehearse."""
    parser.add_argument("--incidents-dir", metavar="DIR", type=inputs.arg(inputs.directory, "--incidents-dir"),
                        help="where incident records go (default $ROLLBACKCTL_INCIDENTS_DIR, else incidents/)")
    parser.add_argument("--break-lock", action="store_true",
                        help="take over a stale lock (its holder is gone), an unusable lock file, or a lock held "
                             "from another host")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
