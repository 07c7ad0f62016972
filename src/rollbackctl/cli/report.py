"""`rollbackctl report`: render an incident record as Markdown or as a self-contained HTML page."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import inputs, paths
from ..errors import ExitCode, IncidentNotFound
from ..files import write_atomic
from ..record import read_record, schema_problems
from .common import add_command

EXIT_CODES = {
    ExitCode.OK: "report written",
    ExitCode.ERROR: "error (unreadable record, output folder missing)",
    ExitCode.USAGE: "no such incident, a malformed incident id, or a bad option (an output file that is a folder)",
    ExitCode.INTERRUPTED: None,
}

DESCRIPTION = f"""\
Render the incident record of a rollback (or rehearsal) for people: outcome and next step first, the
summary (who decided, why, database decision), the triggers and the decision-matrix row, the phases
against the plan's Appendix C estimates, the Appendix A checklist, the backup, the verifications, the
notifications, the collected logs and the Post-Rollback Actions still to do.

Records live in <incidents dir>/<INCIDENT_ID>/incident.json; the incidents dir is --incidents-dir,
else ${paths.INCIDENTS_ENV}, else incidents/ in the project. A record that does not match the incident
schema is rendered with its problems listed first (and a warning on stderr).
"""

EXAMPLES = """\
examples:
  rollbackctl report 20240501-1604-rollback
      Markdown on stdout (the same text as incident.md in the incident folder)
  rollbackctl report 20240501-1604-rollback -o report.html
      one self-contained HTML page with a timeline chart of the phases against their estimates
"""


def _output(value: str, option: str) -> str:
    """--output: '-' (stdout) or a file whose folder exists and that is not a folder itself."""
    return value if value == "-" else str(inputs.output_file(value, option))


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    return "html" if (args.output or "").lower().endswith((".html", ".htm")) else "md"


def run(args: argparse.Namespace) -> ExitCode:
    """Render the record of INCIDENT_ID to --output (atomically, mode 0644) or stdout."""
    record = read_record(paths.incident_path(args.incident_id, args.incidents_dir))
    problems = schema_problems(record)
    if problems:
        print(f"rollbackctl: warning: the record of {args.incident_id} does not match the incident schema "
              f"({'; '.join(problems[:3])}); the report lists the problems first", file=sys.stderr)
    from ..report import render  # Jinja2 only when a report is drawn

    text = render(record, _format(args))
    if args.output and args.output != "-":
        print(f"report written to {write_atomic(args.output, text)}", file=sys.stderr)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return ExitCode.OK


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``report INCIDENT_ID [--format md|html] [--output FILE] [--incidents-dir DIR]``."""
    parser = add_command(subparsers, "report", run=run, exit_codes=EXIT_CODES, description=DESCRIPTION,
                         epilog=EXAMPLES, help="render an incident record as Markdown or a self-contained HTML page")
    parser.add_argument("incident_id", metavar="INCIDENT_ID",
                        type=inputs.arg(inputs.identifier, "INCIDENT_ID", error=IncidentNotFound),
                        help="the incident folder's name (letters, digits, '.', '_' and '-')")
    parser.add_argument("--format", choices=["md", "html"], default=None,
                        help="md (Markdown, the default) or html (inline CSS and SVG timeline, no script); "
                             "default: html when --output ends in .html, else md")
    parser.add_argument("--output", "-o", metavar="FILE", type=inputs.arg(_output, "--output"),
                        help="write the report to FILE (atomically: temporary file and rename); default or '-': stdout")
    parser.add_argument("--incidents-dir", metavar="DIR", default=None,
                        type=inputs.arg(inputs.directory, "--incidents-dir", must_exist=True),
                        help=f"where incident records live (default: ${paths.INCIDENTS_ENV}, else incidents/ in "
                             "the project)")
    return parser
