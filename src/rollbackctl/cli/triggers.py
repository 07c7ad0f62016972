"""`rollbackctl triggers`: evaluate the plan's Rollback Triggers from an observations file or Prometheus."""

from __future__ import annotations

import argparse
import datetime
import sys
import textwrap
from collections.abc import Iterable
from typing import Any

from .. import inputs, matrix
from ..errors import ExitCode, UsageError
from ..triggers import (
    BREACHING,
    METRICS,
    MISSING_POLICIES,
    Observations,
    Thresholds,
    definitions,
    evaluate,
    format_json,
    format_report,
    load_observations,
    read_time,
)
from .common import add_command

EXIT_CODES = {
    ExitCode.OK: "no trigger fired",
    ExitCode.ERROR: None,
    ExitCode.INTERRUPTED: None,
    ExitCode.USAGE: "usage error (bad option, unreadable or malformed observations file)",
    ExitCode.TRIGGER_FIRED: "at least one trigger fired (the implied decision is printed)",
    ExitCode.METRICS_UNREADABLE: "the metrics source is unreadable, or data is missing with --missing fail",
}


def _query_overrides(pairs: Iterable[str]) -> dict[str, str]:
    queries = {}
    for pair in pairs:
        name, sep, promql = pair.partition("=")
        name = name.strip()
        if not sep or name not in METRICS or not promql.strip():
            raise UsageError(f"invalid --query {pair!r}: use METRIC=PROMQL with METRIC one of {', '.join(METRICS)}")
        queries[name] = promql.strip()
    return queries


def _observations(args: argparse.Namespace, thresholds: Thresholds) -> Observations:
    if args.observations is not None:
        misplaced = [flag for flag, value in (("--at", args.at), ("--interval", args.interval),
                                              ("--query", args.query)) if value is not None]
        if misplaced:
            raise UsageError(f"{', '.join(misplaced)} only apply with --prometheus; the observations file "
                             "carries its own collected_at and interval_seconds")
        return load_observations(args.observations)
    at = None if args.at in (None, "now") else read_time(args.at, "--at")
    interval = args.interval or datetime.timedelta(seconds=60)  # a timedelta (inputs.duration)
    from ..triggers.prometheus import PrometheusSource  # urllib only when Prometheus is asked

    source = PrometheusSource(args.prometheus, at=at, interval=interval, queries=_query_overrides(args.query or []))
    return source.collect(thresholds)


def run(args: argparse.Namespace) -> ExitCode:
    """Evaluate and print; OK (none fired) or TRIGGER_FIRED. Raises UsageError and MetricsUnavailable."""
    thresholds = Thresholds().with_overrides(args.threshold or [])
    report = evaluate(_observations(args, thresholds), thresholds, missing=args.missing)
    if args.json:
        print(format_json(report))
        for warning in report.warnings:
            print(f"rollbackctl: warning: {warning}", file=sys.stderr)
    else:
        print(format_report(report))
    return report.exit_code


def _epilog() -> str:
    rows = "\n".join(f"  {d.name:<25} {d.condition_text:<48} -> {d.issue_type}/{d.severity}" for d in definitions())
    queries = "\n".join(f"  {m.name}: {m.default_query}" for m in METRICS.values())
    return (
        "triggers (plan defaults) and the matrix row each implies:\n"
        f"{rows}\n\n"
        "observations file (JSON, or YAML for .yml/.yaml):\n"
        '  {"source": "text", "collected_at": "2026-11-28T16:00:00Z", "interval_seconds": 60,\n'
        '   "metrics": {"api_5xx_ratio": 0.42, "auth_ok": true,\n'
        '               "cpu_percent": [{"t": "2026-11-28T15:56:00Z", "v": 95.0}, ...]}}\n'
        "  A scalar is the value at collected_at; a list holds samples. Windowed triggers split\n"
        "  (collected_at - window, collected_at] into interval-long slots and fire when every slot breaches;\n"
        "  one non-breaching sample stops them. A slot without a sample, or an absent metric, is missing data.\n\n"
        f"default PromQL per metric (override with --query METRIC=PROMQL):\n{queries}\n"
    )


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``triggers (--observations FILE | --prometheus URL) [options]``."""
    parser = add_command(
        subparsers, "triggers", run=run, exit_codes=EXIT_CODES, epilog=_epilog(),
        help="evaluate the rollback plan's triggers on observed metrics",
        description=textwrap.fill(width=78, text=(
            "Evaluate the rollback plan's Rollback Triggers on metrics from an observations file or from "
            "Prometheus, print the fired triggers with their evidence and the decision the most urgent one "
            "implies in the decision matrix. Missing data counts as breaching unless --missing says otherwise."
        )),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--observations", metavar="FILE", type=inputs.arg(inputs.path_text, "--observations",
                                                                          what="an observations file"),
                        help="observations file (JSON, or YAML for .yml/.yaml)")
    source.add_argument("--prometheus", metavar="URL", type=inputs.arg(inputs.url, "--prometheus"),
                        help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--missing", choices=MISSING_POLICIES, default=BREACHING,
                        help="how missing data counts: breaching (default, safe for rollback signals), "
                             "not_breaching, or fail (stop with exit 7 naming the metric)")
    parser.add_argument("--at", metavar="TIME",
                        type=inputs.arg(inputs.plain_value, "--at", what="a time", max_length=64),
                        help="Prometheus only: evaluation time, ISO-8601 (e.g. 2026-11-28T16:00:00Z); default now")
    parser.add_argument("--interval", metavar="DURATION", type=inputs.arg(inputs.duration, "--interval"),
                        help=f"Prometheus only: slot length and query_range step ({matrix.DURATION_FORMS}); "
                             "default 1m")
    parser.add_argument("--query", action="append", metavar="METRIC=PROMQL",
                        type=inputs.arg(inputs.free_text, "--query", purpose="give METRIC=PROMQL"),
                        help="Prometheus only: PromQL for a metric instead of the default (repeatable)")
    parser.add_argument("--threshold", action="append", metavar="NAME=VALUE",
                        type=inputs.arg(inputs.plain_value, "--threshold", what="NAME=VALUE", max_length=200),
                        help=f"override a threshold (repeatable); NAME one of {', '.join(Thresholds.names())}; "
                             "windows and max_sample_age are durations (5m)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser
