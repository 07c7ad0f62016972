"""The options of `rollbackctl run` about people and follow-up: roster, acknowledgements, retry, tickets."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .. import inputs
from ..errors import UsageError
from ..people import ACK_TIMEOUT_MAX, check_ack_timeout
from ..retry import check_estimate
from ..tickets import DEFAULT_API, TOKEN_ENV, check_repo


def _retry_estimate(value: str, option: str) -> str:
    check_estimate(value, option)
    return value


def people_options(parser: argparse.ArgumentParser) -> None:
    """--roster, --ack-timeout, --retry-estimate and the ticket options (`ticket_arguments`)."""
    parser.add_argument(
        "--roster",
        metavar="FILE",
        type=inputs.arg(inputs.path_text, "--roster", what="a roster file"),
        help="YAML/JSON file with the rollback_roster (the plan's six roles, a person and two contacts "
        "each; optionally the decision authority); default: rollback_roster in the inventory's "
        "group_vars/all",
    )
    parser.add_argument(
        "--ack-timeout",
        metavar="SECONDS",
        default=0.0,
        type=inputs.arg(lambda v, o: check_ack_timeout(v, o), "--ack-timeout"),
        help=f"after the announcement, wait up to SECONDS (0-{ACK_TIMEOUT_MAX}) for everyone in the "
        "roster to acknowledge (`rollbackctl ack`); the rollback goes on when the time is up. "
        "Default 0: do not wait. Never waits in check mode or for the emergency procedure",
    )
    parser.add_argument(
        "--retry-estimate",
        metavar="DURATION",
        type=inputs.arg(_retry_estimate, "--retry-estimate"),
        help="when the failed release may be retried, e.g. 4h, 1h30m (default: the --fix-estimate "
        "the decision matrix saw); recorded and given in the completion notice",
    )
    ticket_arguments(parser)


def ticket_arguments(parser: argparse.ArgumentParser) -> None:
    """--tickets-repo, --tickets-api, --tickets-label (run, resume)."""
    parser.add_argument(
        "--tickets-repo",
        metavar="OWNER/NAME",
        type=inputs.arg(check_repo, "--tickets-repo"),
        help=f"after the rollback, open one issue per cause in this GitHub(-compatible) repository; "
        f"the token is read from ${TOKEN_ENV}, never from the command line. Never fatal",
    )
    parser.add_argument(
        "--tickets-api",
        metavar="URL",
        type=inputs.arg(inputs.url, "--tickets-api", example=DEFAULT_API),
        help=f"issue tracker REST API base (default {DEFAULT_API}; a GitHub Enterprise or compatible server)",
    )
    parser.add_argument(
        "--tickets-label",
        metavar="LABEL",
        action="append",
        type=inputs.arg(inputs.plain_value, "--tickets-label", what="a label", max_length=50),
        help="an extra label on each ticket (repeat)",
    )


def ticket_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The tickets configuration of the options, or None without --tickets-repo."""
    if not getattr(args, "tickets_repo", None):
        if getattr(args, "tickets_api", None) or getattr(args, "tickets_label", None):
            raise UsageError("--tickets-api and --tickets-label need --tickets-repo")
        return None
    return {
        "repo": args.tickets_repo,
        "api": args.tickets_api or DEFAULT_API,
        "labels": args.tickets_label or [],
        "token": os.environ.get(TOKEN_ENV, ""),
    }
